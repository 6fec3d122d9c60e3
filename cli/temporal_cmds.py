"""`ebr temporal check`: connect as the API and workers would, and say what answered."""

from __future__ import annotations

import asyncio

import typer

from cli.common import load_settings

temporal_app = typer.Typer(help="Temporal connection.", no_args_is_help=True)


@temporal_app.command("check")
def check(wait: float = typer.Option(0.0, help="Seconds to keep retrying.")) -> None:
    """Connect with the EBR_TEMPORAL_* settings (TLS, mTLS, API key or profile) and print
    the server version and namespace; exit 1 with the reason if that fails."""
    from temporalio.api.workflowservice.v1 import (
        DescribeNamespaceRequest,
        GetSystemInfoRequest,
    )
    from temporalio.service import RPCError

    from runtime.temporal_client import (
        TemporalConfigError,
        TemporalUnreachable,
        connect,
        connect_options,
    )

    settings = load_settings()

    async def probe() -> str:
        client = await connect(settings, wait_s=wait)
        service = client.workflow_service
        info = await service.get_system_info(GetSystemInfoRequest())
        namespace = await service.describe_namespace(
            DescribeNamespaceRequest(namespace=client.namespace))
        return (f"Temporal {info.server_version or '(version not reported)'} at "
                f"{connect_options(settings).describe()}: namespace "
                f"{namespace.namespace_info.name} answers")

    try:
        typer.echo(asyncio.run(probe()))
    except (TemporalConfigError, TemporalUnreachable) as exc:
        typer.echo(f"ebr temporal check: {exc}", err=True)
        raise typer.Exit(1) from exc
    except RPCError as exc:
        typer.echo(f"ebr temporal check: connected, but the server refused: {exc.message}",
                   err=True)
        raise typer.Exit(1) from exc
