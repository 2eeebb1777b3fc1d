"""One module per tab of the app; each exposes `build()` to be called inside gr.Blocks."""
