"""Session-state keys of the Evaluation page (widgets, charts, buttons): the one place they are named."""

# the run and checkpoint evaluated
RUN_KEY = "ev_run"
CKPT_KEY = "ev_checkpoint"

# per class and the confusion matrix
CLASS_TABLE_KEY = "ev_class_table"
PER_CLASS_CHART_KEY = "ev_per_class_chart"
NORMALIZED_KEY = "ev_normalized"
CONFUSION_KEY = "ev_confusion"           # the heatmap; its value is the selection event
PAIR_PREFIX = "ev_pair_"                 # + "<true>_<predicted>": a most-confused-pair button

# the misclassified browser
TRUE_KEY = "ev_true_class"
PRED_KEY = "ev_predicted_class"
SORT_KEY = "ev_sort"
PAGE_KEY = "ev_page"
INSPECT_KEY = "ev_inspect"               # index of the test image shown enlarged (None: no dialog)
INSPECT_PREFIX = "ev_show_"              # + "<index>": the button under a thumbnail
TOPK_CHART_KEY = "ev_topk_chart"
CLOSE_KEY = "ev_close"

# the other sections
COMPARE_KEY = "ev_compare"
COMPARE_CHART_KEY = "ev_compare_chart"
UPLOAD_KEY = "ev_upload"
UPLOAD_CHART_KEY = "ev_upload_chart"
REPLAY_KEY = "ev_replay"

# epoch by epoch (the prediction history) and the history filters of the browser
HISTORY_PREFIX = "ev_hist"               # + "_epoch" (the scrubber), "_latest", "_per_class", ...
HISTORY_FILTER_KEY = "ev_history_filter"
CHANGES_KEY = "ev_changes_k"
STRIP_KEY = "ev_strip"

# where the model looks (the image dialog and the upload)
SHOW_KEY = "ev_saliency_show"             # the toggle that shows the maps (prefixed "upload_" there)
OPACITY_KEY = "ev_saliency_opacity"
LAYER_KEY = "ev_saliency_layer"
SMOOTH_KEY = "ev_saliency_smooth"

# the feature map
MAP_BUTTON_KEY = "ev_map_compute"
MAP_CHART_KEY = "ev_map_chart"
MAP_CLASS_KEY = "ev_map_classes"

# what the model has learned (dashboard.evaluation.learned_view)
LEARNED_SHOW_KEY = "ev_learned_show"      # the toggle that opens the section
UNIT_ORDER_KEY = "ev_units_order"         # "norm" | "drive"
UNIT_CLASS_KEY = "ev_units_class"         # the class whose drive orders the units
UNIT_COUNT_KEY = "ev_units_count"         # how many units the grid shows
PATTERN_STEPS_KEY = "ev_pattern_steps"
PATTERN_BUTTON_KEY = "ev_pattern_compute"
PATTERN_ASKED_KEY = "ev_pattern_asked"       # (checkpoint, key) whose patterns were asked for
ACTIVATION_IMAGE_KEY = "ev_activation_image"
ACTIVATION_TOP_KEY = "ev_activation_top"
PATTERN_CHART_KEY = "ev_pattern_chart"
VARIANCE_CHART_KEY = "ev_whitening_variance"
