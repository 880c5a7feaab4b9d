"""The paper's user study, runnable: the survey page (`page.py`), the order each participant sees
(`order.py`, the same generator in Python and in the page), and the tables of the answers (`answers.py`)."""
