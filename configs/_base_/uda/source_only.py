# Source-only baseline on the UDA data pipeline: the student trains on the labelled source
# half of each batch; the target half is loaded and ignored.
uda = dict(type='SourceOnly')
# SourceOnly runs its own backward pass and optimizer step.
optimizer_config = None
