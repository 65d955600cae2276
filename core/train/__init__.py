"""Training: config (self-describing settings) and presets, models, the device-side batch path,
the engine (fit in small named steps), checkpoints and the device choice. Imports core.data only."""
