// The pages work without this file. It handles what htmx leaves alone: error responses,
// which htmx does not swap into the page, so a tap would otherwise seem to do nothing.
document.addEventListener("htmx:responseError", (event) => {
  const xhr = event.detail.xhr;
  if (xhr.status === 401) {
    // The session ended (idle timeout, logout elsewhere): log in again and come back.
    window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname);
    return;
  }
  let message = "ebr answered " + xhr.status + ". Check the step's status before trying again.";
  try {
    message = JSON.parse(xhr.responseText).error.message || message;
  } catch (ignored) {
    // Not the API's error format: keep the generic message.
  }
  showClientError(message);
});

document.addEventListener("htmx:sendError", () => {
  showClientError("The tablet could not reach ebr. Check the network, then the step's " +
                  "status before trying again.");
});

function showClientError(message) {
  const box = document.getElementById("client-error");
  if (box) {
    box.textContent = message; // text, never markup
    box.hidden = false;
  }
}
