/*
 * Disk I/O panel: one small line chart per quantity, drawn with the d3
 * that Horizon already ships (xstatic D3 3.5); the numbers come from the
 * page itself (#blockacct-chart-data, the same as the Table view).
 */
(function () {
  'use strict';
  var COLORS = {read: '#1f77b4', write: '#d62728', flush: '#2ca02c',
                idle: '#7f7f7f'};

  function draw(box, chart, extent) {
    var width = 520, height = 170;
    var m = {top: 24, right: 70, bottom: 26, left: 60};
    var w = width - m.left - m.right, h = height - m.top - m.bottom;
    var all = [];
    chart.lines.forEach(function (line) {
      line.points.forEach(function (p) {
        if (p[1] !== null) { all.push(p); }
      });
    });
    var panel = d3.select(box).append('div')
      .attr('class', 'col-md-6 blockacct-chart');
    var svg = panel.append('svg')
      .attr('width', width).attr('height', height)
      .attr('role', 'img')
      .attr('aria-label', chart.title + ' (' + chart.unit + ')');
    svg.append('text').attr('x', m.left).attr('y', 14)
      .style('font-weight', 'bold')
      .text(chart.title + ' (' + chart.unit + ')');
    var g = svg.append('g')
      .attr('transform', 'translate(' + m.left + ',' + m.top + ')');
    if (!all.length) {
      g.append('text').attr('x', 10).attr('y', h / 2)
        .text('no data in this range');
      return;
    }
    // Every chart on the same time axis: the series' first to last period.
    var x = d3.time.scale().range([0, w]).domain(extent);
    var y = d3.scale.linear().range([h, 0])
      .domain([0, d3.max(all, function (p) { return p[1]; }) || 1]).nice();
    g.append('g').attr('class', 'x axis')
      .attr('transform', 'translate(0,' + h + ')')
      .call(d3.svg.axis().scale(x).orient('bottom').ticks(5));
    g.append('g').attr('class', 'y axis')
      .call(d3.svg.axis().scale(y).orient('left').ticks(4));
    g.selectAll('.axis path, .axis line')
      .style('fill', 'none').style('stroke', '#999');
    var line = d3.svg.line()
      .defined(function (p) { return p[1] !== null; })
      .x(function (p) { return x(new Date(p[0] * 1000)); })
      .y(function (p) { return y(p[1]); });
    chart.lines.forEach(function (l, i) {
      if (!l.points.length) { return; }
      g.append('path').datum(l.points).attr('d', line)
        .attr('class', 'blockacct-line')
        .style('fill', 'none').style('stroke-width', 1.5)
        .style('stroke', COLORS[l.name] || '#000');
      g.append('text').attr('x', w + 6).attr('y', 12 + 14 * i)
        .style('fill', COLORS[l.name] || '#000').text(l.name);
    });
  }

  function init() {
    var box = document.getElementById('blockacct-charts');
    var source = document.getElementById('blockacct-chart-data');
    if (!box || !source || typeof d3 === 'undefined') { return; }
    var charts = JSON.parse(source.textContent);
    var times = [];
    charts.forEach(function (chart) {
      chart.lines.forEach(function (line) {
        line.points.forEach(function (p) { times.push(p[0]); });
      });
    });
    var extent = [new Date(d3.min(times) * 1000),
                  new Date(d3.max(times) * 1000)];
    charts.forEach(function (chart) { draw(box, chart, extent); });
    box.setAttribute('data-drawn', 'true');
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
}());
