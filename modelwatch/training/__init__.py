"""Training: the scikit-learn pipeline (fit), the DVC stage command (stage), scoring, training
window, model card (pure: no orchestrator, no tracking)."""
