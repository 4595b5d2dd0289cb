"""Ready links for a lecture: the seed's examples, each a page and the query string that opens it in
the promised state (the app keeps every page's state in the address bar; see ui/session.url_state).

Pure data: the lesson page lists them, and a browser test opens each one cold and checks the state."""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from .lesson import LESSON_TEXTS
from .presets import PRESETS


@dataclass(frozen=True)
class Demo:
    """One link: `page` is the app's URL path ("" for Explore, the default page), `params` its query."""
    id: str
    title: str
    page: str
    params: dict = field(default_factory=dict)
    shows: str = ""

    def url(self, base: str = "") -> str:
        """The link, relative (`base` empty: "./lesson?step=order") or under `base` (a server's address)."""
        root = base.rstrip("/") + "/" if base else "./"
        return root + self.page + (("?" + urlencode(self.params)) if self.params else "")


_GIRL = PRESETS["Bartender (girl / she)"]
#: In the word models' reading of the girl sentence (<eos> first), the comma after "Certainly".
CERTAINLY_COMMA = 25

DEMOS: tuple[Demo, ...] = (
    Demo("bartender-lesson", "The bartender: miss or sir?", "lesson", {"step": "bartender"},
         "Lesson step 3: after girl/she and after boy/he, P(miss), P(ma'am), P(madam) and P(sir) side by side, "
         "the words that pushed the choice, and what the books say against what the sentence says."),
    Demo("bartender-explore", "The bartender, word by word (presenter view)", "",
         {"text": _GIRL, "pos": str(CERTAINLY_COMMA), "present": "1"},
         "Explore in the presenter view, stopped at “Certainly ,”: the next word the model expects. "
         "Step with the clicker."),
    Demo("bartender-ngram", "Where memory pays off: the network against the 3-gram", "",
         {"text": _GIRL, "pos": str(CERTAINLY_COMMA), "ngram": "1"},
         "Explore with the Kneser-Ney 3-gram's surprisal as a band under each word: red bands under pale "
         "words are where remembering more than two words made the next word predictable."),
    Demo("bartender-contrast", "Girl / she against boy / he, state by state", "contrast",
         {"a": _GIRL, "b": PRESETS["Bartender (boy / he)"]},
         "Contrast: the two sentences aligned, how far apart the memories are after each word."),
    Demo("mary-john-lesson", "Mary loves John / John loves Mary", "lesson", {"step": "order"},
         "Lesson step 2: the same words in another order, and different memories."),
    Demo("mary-john-contrast", "Mary / John on the Contrast page", "contrast",
         {"a": LESSON_TEXTS["order"][0], "b": LESSON_TEXTS["order"][1]},
         "Contrast: the two orders, the final-state distance and the next-word bars."),
    Demo("unrolled", "The unrolled network", "lesson", {"step": "unrolled"},
         "Lesson step 4: one box per word, the real memory inside each."),
    Demo("shapes-one-to-many", "Shapes: one in, many out", "lesson", {"step": "shapes", "shape": "one-to-many"},
         "Lesson step 5: the network writes a sequence from one word."),
    Demo("shapes-many-to-one", "Shapes: many in, one out", "lesson", {"step": "shapes", "shape": "many-to-one"},
         "Lesson step 5: a whole passage read into one state, then a classifier: Austen or Doyle?"),
    Demo("cells", "A cell that counts along the line", "lesson", {"step": "cells"},
         "Lesson step 6: the character model's unit that tracks the position in the line, as coloured text."),
)
