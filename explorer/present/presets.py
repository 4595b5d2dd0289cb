"""Example sentences used in lectures, the app's preset menu and the colour-range calibration.

The bartender pair differs only in the person (girl/she, boy/he) and the bartender's reply
(miss/sir): step to "Certainly ," and compare the next-word predictions to see whether the network
carried the gender across the quotation. "Mary loves John ." / "John loves Mary ." contain the same
words in a different order: the states differ because an RNN reads in order.
"""
from __future__ import annotations

PRESETS: dict[str, str] = {
    "Bartender (girl / she)": 'A girl walked into a bar, and she said "Can I have a drink please?" '
                              'The bartender said "Certainly, miss."',
    "Bartender (boy / he)": 'A boy walked into a bar, and he said "Can I have a drink please?" '
                            'The bartender said "Certainly, sir."',
    "Mary loves John .": "Mary loves John .",
    "John loves Mary .": "John loves Mary .",
    "Holmes, with a quotation": 'Holmes leaned back in his chair, put his finger-tips together, and, '
                                'after a long silence in which I heard only the ticking of the clock '
                                'upon the mantelpiece, said quietly, "You have been in Afghanistan, '
                                'I perceive, and you have come to London with very little money and '
                                'a great deal of curiosity."',
}

#: The sentence the app opens with.
DEFAULT_PRESET = "Bartender (girl / she)"

#: Text read once per model to calibrate the colour range of unbounded quantities (the LSTM cell
#: state c). Every preset is part of it, so the presets never leave the colour scale.
REFERENCE_TEXT = " ".join(PRESETS.values()) + (
    " It was the best of times, it was the worst of times. She was the youngest of the two "
    "daughters of a most affectionate, indulgent father; and had, in consequence of her sister's "
    "marriage, been mistress of his house from a very early period.")
