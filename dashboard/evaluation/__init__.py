"""Sections of the Evaluation page (dashboard/views/evaluation.py) that have grown past a few lines.

    keys      every session-state / widget key the page uses, in one place
    loading   runs that can be evaluated, their dataset, the cached model and evaluation
    browser   the misclassified-image browser, its class filters and the enlarged-image dialog
    compare   per-class accuracy of the chosen run next to another run's
    upload    predict the class of an image the user uploads
    replay    check: the tutorial MLP replayed in the hand-written numpy network

Streamlit widgets only: the numbers come from core.evaluate, the figures from dashboard.figures.
"""
