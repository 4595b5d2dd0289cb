// Lecture mode: presentation-remote keys and the presenter view's sidebar.
//
// A presentation remote ("clicker") sends PageDown / PageUp, and some send "." / "b". This component
// listens on the document and sends "next" or "prev" to Python as a trigger value, so a page (the
// lesson) can step its own way. The Explore player (player.js) handles the same keys itself: while a
// player is on the page this listener stays quiet. Keys typed into a text box are left alone.
//
// data: {keys: listen for clicker keys, collapse: a number that changes each time the presenter
// view is switched on (0 when it is off): the sidebar is collapsed once per new number; scroll: a
// number that changes when the page's anchor (lecture.anchor) should be scrolled to the top.}

const NEXT = ["PageDown", "."], PREV = ["PageUp", "b", "B"];

function direction(e) {
  if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return null;
  const t = e.target, tag = (t && t.tagName) || "";
  if (t && (t.isContentEditable || tag === "TEXTAREA" || tag === "INPUT" || tag === "SELECT")) return null;
  if (NEXT.includes(e.key)) return "next";
  if (PREV.includes(e.key)) return "prev";
  return null;
}

function collapseSidebar() {
  const bar = document.querySelector('section[data-testid="stSidebar"]');
  if (!bar) return false;
  if (bar.dataset.collapsed === "true" || bar.getAttribute("aria-expanded") === "false") return true;
  const btn = document.querySelector('[data-testid="stSidebarCollapseButton"] button')
           || document.querySelector('[data-testid="stSidebarCollapseButton"]');
  if (!btn) return false;
  btn.click();
  return true;
}

export default function (component) {
  const { parentElement, setTriggerValue } = component;
  const data = (Array.isArray(component.data) ? component.data[0] : component.data) || {};
  let S = parentElement.__clicker;
  if (!S) S = parentElement.__clicker = { count: 0, listener: null, collapsed: null };
  S.send = setTriggerValue;
  parentElement.dataset.testid = "clicker";
  parentElement.dataset.keys = data.keys ? "1" : "0";
  if (data.keys && !S.listener) {
    S.listener = e => {
      if (!parentElement.isConnected) return;
      if (document.querySelector(".rsx")) return;          // the Explore player steps itself
      const d = direction(e);
      if (!d) return;
      e.preventDefault();
      S.count += 1;
      parentElement.dataset.sent = String(S.count);
      // a new value each time: the same direction twice in a row is two steps
      S.send("key", { dir: d, n: S.count, t: Date.now() });
    };
    document.addEventListener("keydown", S.listener);
  } else if (!data.keys && S.listener) {
    document.removeEventListener("keydown", S.listener);
    S.listener = null;
  }
  if (data.scroll && S.scrolled !== data.scroll) {
    // the step's content (lecture.anchor) to the top of the screen, once the run that draws it is done
    S.scrolled = data.scroll;
    // Charts drawn after the run, and the sidebar folding away, move the layout: the anchor is scrolled
    // to again a few times over the next 2 s, unless the person scrolls by hand meanwhile.
    let tries = 0, moved = false;
    const mine = data.scroll;
    const byHand = () => { moved = true; };
    ["wheel", "touchmove", "mousedown"].forEach((e) => document.addEventListener(e, byHand, { once: true, passive: true }));
    const to = () => {
      const a = document.querySelector('[data-testid="present-anchor"]');
      if (!a || moved || S.scrolled !== mine) return;
      (a.closest('[data-testid="stElementContainer"]') || a).scrollIntoView({ block: "start" });
    };
    const go = () => {
      const a = document.querySelector('[data-testid="present-anchor"]');
      const busy = document.querySelector('[data-test-script-state]')?.getAttribute('data-test-script-state') === "running";
      if (a && !busy) { to(); [300, 800, 1500, 2200].forEach((ms) => setTimeout(to, ms)); }
      else if (++tries < 100) setTimeout(go, 150);
    };
    setTimeout(go, 100);
  }
  if (data.collapse && S.collapsed !== data.collapse) {
    // the sidebar is drawn after the page's first elements: try for a short while
    let tries = 0;
    const go = () => { if (collapseSidebar() || ++tries > 20) S.collapsed = data.collapse; else setTimeout(go, 100); };
    go();
  }
  return () => {
    if (!parentElement.isConnected && S.listener) {
      document.removeEventListener("keydown", S.listener);
      S.listener = null;
    }
  };
}
