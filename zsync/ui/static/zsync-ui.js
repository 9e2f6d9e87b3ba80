// Draws each chart of the zsync dashboard from the Vega-Lite spec embedded in its card.
// Vega, Vega-Lite and vega-embed come from the datasette-dashboards package: no network.
(function () {
  for (const el of document.querySelectorAll("[data-chart]")) {
    const spec = JSON.parse(el.querySelector("script").textContent);
    vegaEmbed(el, spec, { actions: false, renderer: "svg" })
      .then(() => { el.dataset.drawn = "yes"; })
      .catch((err) => {
        el.dataset.drawn = "error";
        el.textContent = "This chart could not be drawn: " + err;
      });
  }
})();
