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
