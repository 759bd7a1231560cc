"""UDA wrappers: DACS self-training, feature distance, ClassMix, EMA teacher."""
