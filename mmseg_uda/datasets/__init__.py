"""Datasets: GTA, SYNTHIA, Cityscapes, UDADataset with rare class sampling."""
