"""The named choices of the shared config keys, each declared once with what it means, and without torch:
the settings' rules check a value against them before a run starts (cce_bench/settings), and the module that acts on a
choice reads its names from here."""

# metric_knobs.sanity.modes: how the model-parameter randomisation test re-initialises the blocks (metrics/sanity.py)
SANITY_MODES = {
    "cascading": "the blocks from the logits down, one more at each step, the earlier ones kept random",
    "independent": "one block at a time, the others trained",
}

# pointing-game game=NAME: which game is played (metrics/pointing_game.py)
POINTING_GAMES = {
    "energy": "the share of the map's energy in the explained category's boxes (Score-CAM's, Table 5)",
    "contrastive": "on images with two categories P and Q: the share of the energy in P's boxes among that in P's "
                   "and Q's, for the method's answer to 'why P rather than Q?'",
}

# metric_knobs.class_sensitivity.other: the class a map is compared against (metrics/class_sensitivity.py)
OTHER_CLASSES = {
    "second": "the most likely class other than the explained one and the top-1 (the hardest contrast)",
    "random": "a class drawn uniformly among the others, seeded per image (Sixt et al. 2020, Quantus RandomLogit)",
    "least": "the least likely class (Rebuffi et al. 2020)",
}

# metric_knobs.class_sensitivity.similarity: how alike the two maps are (metrics/class_sensitivity.py)
SIMILARITIES = {
    "ssim": "structural similarity of the maps in [0, 1]",
    "spearman": "Spearman rank correlation of the maps",
}

# score maps_frame=NAME: which frame another tool's maps are in (data/saved_maps.py)
MAP_FRAMES = {
    "auto": "the image's frame where a map has the image's size (and not the input's), else the model's input",
    "input": "the model's input (after resize and crop)",
    "image": "the original image, cropped and resized as the image is",
}
