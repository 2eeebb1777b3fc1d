"""The classes of the instruments task, in label order."""
LABELS = ["cello", "guitar", "piano", "violin"]
