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
MACHINES, PER_MACHINE, ENDPOINT = "train_nnodes", "train_nproc_per_node", "train_rdzv_endpoint"  # several machines
# state that is not a widget
LIVE = "train_live_metrics"   # {run id: {"attempts", "last_id", "frame"}}: what this tab has read so far
SEEN = "train_seen_statuses"  # {run id: status} at the last full run, to notice changes from elsewhere
PROGRESS_CLASS = "cifarlab-progress"   # the progress line's HTML class (run_panel.progress_line, live_view.js; tests, bench)
SETTLED = "train_settled_parts"  # what the last full run drew of the active run's slow parts (live_feed.settled_key)
FLASH = "train_flash"         # (kind, text) to show once after a button's callback
# changes to the selected run while it trains (dashboard.run_controls)
LR_FACTOR, APPLY_LR_FACTOR = "train_control_lr_factor", "train_control_apply_lr_factor"
NEW_LR, APPLY_LR = "train_control_lr", "train_control_apply_lr"
NEW_EPOCHS, APPLY_EPOCHS = "train_control_epochs", "train_control_apply_epochs"
STOP_AT_EPOCH_END = "train_control_stop_at_epoch_end"
# the learning-rate finder (dashboard.lr_finder_panel)
FIND_LR, USE_LR = "train_find_lr", "train_use_lr"
FINDER_JOB = "train_lr_finder_job"   # {"pid", "path"} of this tab's finder
