"""Built-in Modbus tag maps, by the name an equipment register uses in `tag_map:`, and
the tags a driver needs for each equipment class."""

from __future__ import annotations

from devices.cooker_tags import COOKER_TAGS
from devices.dryer_tags import DRYER_TAGS
from devices.mixer_tags import MIXER_TAG_NAMES, MIXER_TAGS
from devices.plc_tags import Tag

TAG_MAPS: dict[str, dict[str, Tag]] = {
    "mixer": MIXER_TAGS, "cooker": COOKER_TAGS, "fluid-bed-dryer": DRYER_TAGS,
}

# A register entry of this class must define at least these tags: its driver uses them
# by name. (The tags a recipe's PLC steps use are checked when a batch binds equipment.)
REQUIRED_TAGS: dict[str, frozenset[str]] = {"mixer": MIXER_TAG_NAMES}
