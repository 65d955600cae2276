"""Session-state and widget keys of the Training page, in one place (the config form's own keys
come from dashboard.config_form.field_key)."""
from __future__ import annotations

from dashboard.config_form import field_key

# the new-run form
PRESET = field_key("preset")  # the preset picker: it sets TrainConfig.preset and fills the form
NAME, FORM, START = "train_name", "train_form", "train_start"
# the run panel
SELECTED, STOP, RESUME = "train_selected_run", "train_stop", "train_resume"
# all runs: comparison, rename and delete
COMPARE, ALL_SETTINGS = "train_compare", "train_compare_all_settings"
RENAME_TEXT, RENAME = "train_rename_text", "train_rename"
DELETE_CONFIRM, DELETE = "train_delete_confirm", "train_delete"
# state that is not a widget
LIVE = "train_live_metrics"   # {run id: {"attempts", "last_id", "frame"}}: what this tab has read so far
SEEN = "train_seen_statuses"  # {run id: status} at the last full run, to notice changes from elsewhere
FLASH = "train_flash"         # (kind, text) to show once after a button's callback
