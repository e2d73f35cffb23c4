/* The interactive data map (plot_cartography.py --interactive): the shared TDDataMap, one point per
 * example coloured by its correctness bin; hover shows guid, metrics, gold label and text. */
(function () {
  var D = JSON.parse(document.getElementById("td-data").textContent);
  var $ = function (id) { return document.getElementById(id); };
  TDDataMap({
    canvas: $("map"), legend: $("map-legend"), tip: $("tip"), resetButton: $("map-reset"),
    x: D.x, y: D.y,
    color: function (i) { return D.colors[D.k[i]]; },
    legendTitle: "correctness",
    legendItems: D.labels.map(function (t, k) { return {label: t, color: D.colors[k]}; }),
    tipText: function (i) {
      var s = "guid " + D.guid[i] + "\nconfidence " + D.y[i] + "\nvariability " + D.x[i] + "\ncorrectness " + D.labels[D.k[i]];
      if (D.gold) s += "\ngold " + D.gold[i];
      if (D.text) s += "\n" + D.text[i];
      return s;
    }
  });
  document.body.setAttribute("data-ready", "1");
})();
