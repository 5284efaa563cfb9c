"""Pure table/plot data from presets and studies, then rendering (Markdown, CSV)."""
