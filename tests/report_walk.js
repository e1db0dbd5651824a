// Injected into a copy of the Snakemake report by tests/test_workflow.py: walks it as a reader does, in a real
// browser. For each result category: click it, click its first subcategory (when it has several), list the
// results, click the first one's view button and record what the content pane then shows. The record goes
// as JSON into a pre element with id rae-bench-walk, for `chromium --dump-dom` to hand back.
(function () {
  const found = {};
  const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const links = () => [...document.querySelectorAll("nav a")];
  const shownPath = (src) => Object.keys(results).find((k) => results[k].data_uri === src) || null;

  async function visit(category) {
    const entry = { listed: [], shown: null };
    links().find((a) => a.textContent.trim() === category).click();
    await wait(300);
    const sub = links().find((a) => a.querySelector("svg") && /^[A-Za-z0-9_-]+$/.test(a.textContent.trim()));
    if (document.querySelectorAll("nav table").length === 0 && sub) {
      sub.click();
      await wait(300);
    }
    const rows = [...document.querySelectorAll("nav table tbody tr")];
    entry.listed = rows.map((r) => [...r.querySelectorAll("td")].map((td) => td.textContent.trim()).filter((t) => t).join(" "));
    entry.toggles = [...document.querySelectorAll("nav button, nav select, nav label")].map((b) => b.textContent.trim()).filter((t) => t);
    const eye = rows.length ? rows[0].querySelector("a[iconname=eye]") : null;
    if (eye) {
      eye.click();
      await wait(300);
      const img = [...document.querySelectorAll("img")].find((i) => shownPath(i.getAttribute("src"))); // not the logo
      const frame = document.querySelector("iframe[src^='data:text/html']");
      if (img) {
        for (let i = 0; i < 30 && !(img.complete && img.naturalWidth); i++) await wait(100);
        entry.shown = { kind: "img", path: shownPath(img.getAttribute("src")), width: img.naturalWidth, height: img.naturalHeight };
      } else if (frame) {
        const src = frame.getAttribute("src");
        const page = atob(src.slice(src.indexOf(",") + 1));
        entry.shown = { kind: "html", path: shownPath(src), tables: (page.match(/<table/g) || []).length,
                        rows: (page.match(/<tr>/g) || []).length };
      }
    }
    found[category] = entry;
    app.setView({ navbarMode: "menu" }); // back to the menu, as the breadcrumb's first link does
    await wait(300);
  }

  window.addEventListener("load", async () => {
    await wait(500);
    const menu = links().map((a) => a.textContent.trim()).filter((t) => t);
    for (const category of ["Tables", "Samples", "Loss curves"]) if (menu.includes(category)) await visit(category);
    const out = document.createElement("pre");
    out.id = "rae-bench-walk";
    out.textContent = JSON.stringify({ menu, found });
    document.body.appendChild(out);
  });
})();
