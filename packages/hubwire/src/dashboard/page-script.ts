// The dashboard page's script, sent as it is written here. It speaks the SignalR JSON hub protocol over a WebSocket
// itself (no negotiate: the server accepts a WebSocket without a connection id), hears `snapshot` from every node,
// invokes `nodes` every few seconds, and draws SVG line charts and tables. Every value is inserted as text (DOM
// textContent and attributes), never as HTML.

export const DASHBOARD_SCRIPT = String.raw`
'use strict';
(function () {
  var RS = '\x1e';
  var SVG = 'http://www.w3.org/2000/svg';
  var COLOURS = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4d7c0f'];
  var body = document.body;
  var hubPath = body.dataset.hub;
  var interval = Number(body.dataset.interval) || 1000;
  var WINDOW_MS = Math.max(60000, 120 * interval);
  var STALE_MS = Math.max(3 * interval, 5000);
  var REGISTRY_MS = 3000;

  /** id -> { id, colour, last, points: [{t, lag, sent, received, connections}], registry } */
  var nodes = new Map();
  var socket = null;
  var invocations = new Map();
  var nextId = 1;
  var retry = 1000;
  var rendering = false;

  function node(id) {
    var n = nodes.get(id);
    if (!n) {
      n = { id: id, colour: COLOURS[nodes.size % COLOURS.length], last: null, receivedAt: 0, points: [], registry: null };
      nodes.set(id, n);
    }
    return n;
  }

  // ---- The connection: SignalR's JSON hub protocol over a WebSocket. ----

  function setStatus(text, state) {
    var pill = document.getElementById('status');
    pill.textContent = text;
    pill.className = 'pill ' + state;
    body.dataset.connected = String(state === 'connected');
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message) + RS);
  }

  function invoke(target, args) {
    return new Promise(function (resolve, reject) {
      var id = String(nextId++);
      invocations.set(id, { resolve: resolve, reject: reject });
      send({ type: 1, invocationId: id, target: target, arguments: args || [] });
    });
  }

  function connect() {
    var url = new URL(hubPath, location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    // An app that authenticates with access_token in the query gets it passed on.
    var token = new URLSearchParams(location.search).get('access_token');
    if (token) url.searchParams.set('access_token', token);
    var ws = new WebSocket(url.href);
    var handshaken = false;
    var pinger = null;
    socket = ws;
    ws.onopen = function () {
      ws.send(JSON.stringify({ protocol: 'json', version: 1 }) + RS);
    };
    ws.onmessage = function (event) {
      var records = String(event.data).split(RS);
      for (var i = 0; i < records.length; i++) {
        if (!records[i]) continue;
        var message = JSON.parse(records[i]);
        if (!handshaken) {
          if (message.error) { setStatus('refused: ' + message.error, 'disconnected'); ws.close(); return; }
          handshaken = true;
          retry = 1000;
          setStatus('live', 'connected');
          pinger = setInterval(function () { send({ type: 6 }); }, 15000);
          refreshRegistry();
          continue;
        }
        receive(message);
      }
    };
    ws.onclose = function () {
      if (pinger) clearInterval(pinger);
      invocations.forEach(function (pending) { pending.reject(new Error('connection closed')); });
      invocations.clear();
      if (socket !== ws) return;
      socket = null;
      setStatus('reconnecting', 'disconnected');
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 15000);
    };
  }

  function receive(message) {
    if (message.type === 1 && message.target === 'snapshot') onSnapshot(message.arguments[0]);
    else if (message.type === 3) {
      var pending = invocations.get(message.invocationId);
      invocations.delete(message.invocationId);
      if (!pending) return;
      if (message.error) pending.reject(new Error(message.error));
      else pending.resolve(message.result);
    } else if (message.type === 7) {
      setStatus('closed by the server' + (message.error ? ': ' + message.error : ''), 'disconnected');
    }
  }

  function refreshRegistry() {
    invoke('nodes').then(function (list) {
      for (var i = 0; i < list.length; i++) node(list[i].id).registry = list[i];
      nodes.forEach(function (n) {
        if (n.registry && !list.some(function (r) { return r.id === n.id; })) n.registry = null;
      });
      scheduleRender();
    }, function () {});
  }
  setInterval(function () { if (socket && socket.readyState === WebSocket.OPEN) refreshRegistry(); }, REGISTRY_MS);

  // ---- Snapshots: counters become rates, points of the charts. ----

  function maxLag(snapshot) {
    var lag = 0;
    var streams = (snapshot.backplane && snapshot.backplane.streams) || [];
    for (var i = 0; i < streams.length; i++) lag = Math.max(lag, streams[i].lag || 0);
    return lag;
  }

  function rate(now, before, seconds) {
    return seconds > 0 ? Math.max(0, (now - before) / seconds) : 0;
  }

  function onSnapshot(s) {
    if (!s || typeof s.node !== 'string' || typeof s.at !== 'number') return;
    var n = node(s.node);
    var prev = n.last;
    if (prev && s.at <= prev.at) return;
    var point = { t: s.at, lag: maxLag(s), connections: s.connections.total + s.connections.classic, sent: null, received: null };
    if (prev) {
      var seconds = (s.at - prev.at) / 1000;
      point.sent = rate(s.messagesSent, prev.messagesSent, seconds);
      point.received = s.backplane && prev.backplane ? rate(s.backplane.received, prev.backplane.received, seconds) : 0;
    }
    n.last = s;
    n.receivedAt = Date.now(); // staleness by this browser's clock: the nodes' clocks may differ from it
    n.points.push(point);
    while (n.points.length && n.points[0].t < s.at - WINDOW_MS) n.points.shift();
    scheduleRender();
  }

  function scheduleRender() {
    if (rendering) return;
    rendering = true;
    setTimeout(function () { rendering = false; render(); }, 50);
  }

  // ---- Drawing. ----

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    (children || []).forEach(function (c) { e.append(c instanceof Node ? c : document.createTextNode(String(c))); });
    return e;
  }

  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    return e;
  }

  /** A tick step of 1, 2 or 5 times a power of ten giving at most 5 intervals up to value (counts: 1 at least). */
  function tickStep(value) {
    if (!(value > 0)) return 1;
    var power = Math.pow(10, Math.floor(Math.log10(value / 5)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * power * 5 >= value) return Math.max(steps[i] * power, 0.1);
    return 10 * power;
  }

  function formatNumber(v) {
    if (v >= 1e6) return (v / 1e6).toFixed(1) + 'M';
    if (v >= 1e4) return (v / 1e3).toFixed(0) + 'k';
    if (v >= 1e3) return (v / 1e3).toFixed(1) + 'k';
    return String(Math.round(v * 10) / 10);
  }

  function drawChart(id, key) {
    var chart = document.getElementById(id);
    var width = chart.clientWidth || 560;
    var height = chart.clientHeight || 180;
    var left = 44, right = 8, top = 8, bottom = 20;
    var now = 0, start = Infinity, max = 0;
    nodes.forEach(function (n) {
      n.points.forEach(function (p) {
        if (p[key] === null) return;
        now = Math.max(now, p.t);
        start = Math.min(start, p.t);
        max = Math.max(max, p[key]);
      });
    });
    chart.replaceChildren();
    chart.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    if (!(now > 0)) {
      var wait = svg('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle' });
      wait.textContent = 'waiting for data';
      chart.append(wait);
      return;
    }
    start = Math.max(start, now - WINDOW_MS);
    var span = Math.max(now - start, 1);
    var step = tickStep(max);
    var top_ = Math.max(step, Math.ceil(max / step) * step);
    var x = function (t) { return left + ((t - start) / span) * (width - left - right); };
    var y = function (v) { return top + (1 - v / top_) * (height - top - bottom); };
    for (var i = 0; i * step <= top_ + step / 1000; i++) {
      var value = i * step;
      chart.append(svg('line', { class: 'grid', x1: left, x2: width - right, y1: y(value), y2: y(value) }));
      var label = svg('text', { x: left - 6, y: y(value) + 3, 'text-anchor': 'end' });
      label.textContent = formatNumber(value);
      chart.append(label);
    }
    [[start, 'start'], [now, 'end']].forEach(function (tick) {
      var t = svg('text', { x: x(tick[0]), y: height - 5, 'text-anchor': tick[1] });
      t.textContent = tick[1] === 'end' ? 'now' : '-' + Math.round(span / 1000) + ' s';
      chart.append(t);
    });
    nodes.forEach(function (n) {
      var pts = n.points.filter(function (p) { return p[key] !== null && p.t >= start; });
      if (!pts.length) return;
      var line = svg('polyline', {
        fill: 'none', stroke: n.colour, 'stroke-width': 2, 'stroke-linejoin': 'round',
        points: pts.map(function (p) { return x(p.t).toFixed(1) + ',' + y(p[key]).toFixed(1); }).join(' '),
      });
      line.dataset.node = n.id;
      line.dataset.points = String(pts.length);
      chart.append(line);
    });
  }

  function shortId(id) {
    return id.length > 12 ? id.slice(0, 8) : id;
  }

  function nodeCell(n) {
    var swatch = el('span', { class: 'swatch' });
    swatch.style.background = n.colour;
    var cell = el('td', {}, [swatch, ' ', el('code', { title: n.id }, [shortId(n.id)])]);
    if (n.registry && n.registry.self) cell.append(' (this page)');
    return cell;
  }

  function duration(ms) {
    var s = Math.round(ms / 1000);
    if (s < 120) return s + ' s';
    if (s < 7200) return Math.round(s / 60) + ' min';
    return (s / 3600).toFixed(1) + ' h';
  }

  function table(id, headings, rows, empty) {
    var head = el('tr', {}, headings.map(function (h) {
      return el('th', h.charAt(0) === '#' ? { class: 'num' } : {}, [h.replace(/^#/, '')]);
    }));
    var t = document.getElementById(id);
    t.replaceChildren(el('thead', {}, [head]));
    var tbody = el('tbody');
    if (!rows.length) tbody.append(el('tr', {}, [el('td', { class: 'empty', colspan: headings.length }, [empty])]));
    rows.forEach(function (cells) {
      tbody.append(el('tr', {}, cells.map(function (c) {
        if (c instanceof Node) return c;
        return el('td', typeof c === 'number' ? { class: 'num' } : {}, [typeof c === 'number' ? formatNumber(c) : c]);
      })));
    });
    t.append(tbody);
  }

  function health(n) {
    var r = n.registry;
    var parts = [];
    if (r) parts.push(r.alive ? el('span', { class: 'ok' }, ['alive']) : el('span', { class: 'bad' }, ['dead']));
    else parts.push(el('span', { class: 'warn' }, ['not in registry']));
    var silent = n.last ? Date.now() - n.receivedAt : 0;
    if (silent > STALE_MS) parts.push(' ', el('span', { class: 'warn' }, ['no snapshot for ' + duration(silent)]));
    if (r) parts.push(' heartbeat ' + duration(r.heartbeatAge) + ' ago');
    return el('td', {}, parts);
  }

  function render() {
    var legend = document.getElementById('legend');
    legend.replaceChildren();
    var alive = 0, connections = 0, sent = 0;
    nodes.forEach(function (n) {
      var swatch = el('span', { class: 'swatch' });
      swatch.style.background = n.colour;
      var address = n.registry && n.registry.info && n.registry.info.address;
      legend.append(el('span', { 'data-node': n.id, 'data-colour': n.colour }, [swatch, shortId(n.id) + (address ? ' ' + address : '')]));
      if (n.registry ? n.registry.alive : n.last) alive++;
      if (n.last) connections += n.last.connections.total + n.last.connections.classic;
      var p = n.points[n.points.length - 1];
      if (p && p.sent) sent += p.sent;
    });
    document.getElementById('summary').textContent =
      alive + ' node' + (alive === 1 ? '' : 's') + ' alive · ' + connections + ' connections · ' + formatNumber(sent) + ' messages/s to clients';

    drawChart('chart-lag', 'lag');
    drawChart('chart-sent', 'sent');
    drawChart('chart-received', 'received');
    drawChart('chart-connections', 'connections');

    var list = Array.from(nodes.values());
    table('nodes', ['Node', 'Address', 'Version', 'Health', '#Uptime', '#Connections', '#WS / SSE / LP', '#Classic', '#Invocations (errors)', '#Sent/s', '#Send queue'],
      list.map(function (n) {
        var s = n.last, info = (n.registry && n.registry.info) || {};
        var by = (s && s.connections.byTransport) || {};
        var p = n.points[n.points.length - 1];
        var num = function (text) { return el('td', { class: 'num' }, [text]); };
        return [nodeCell(n), String(info.address || ''), String(info.version || ''), health(n),
          s ? num(duration(s.uptime * 1000)) : '', s ? s.connections.total : '',
          s ? num((by.web_sockets || 0) + ' / ' + (by.server_sent_events || 0) + ' / ' + (by.long_polling || 0)) : '',
          s ? s.connections.classic : '', s ? num(formatNumber(s.invocations.total) + ' (' + formatNumber(s.invocations.errors) + ')') : '',
          p && p.sent !== null ? p.sent : '', s && s.backplane ? s.backplane.queueLength : ''];
      }), 'No node yet.');

    var streams = [];
    list.forEach(function (n) {
      var b = n.last && n.last.backplane;
      (b ? b.streams : []).forEach(function (st) {
        var state = el('td', {}, [el('span', { class: st.state === 'open' ? 'ok' : st.state === 'buffering' ? 'warn' : 'bad' }, [st.state])]);
        streams.push([String(st.stream), nodeCell(n), state, st.head, st.position, st.lag, st.lagSeconds]);
      });
    });
    streams.sort(function (a, b) { return Number(a[0]) - Number(b[0]); });
    table('streams', ['Stream', 'Node', 'State', '#Head', '#Position', '#Lag (rows)', '#Lag (s)'], streams, 'No backplane: one node, in memory.');

    table('counters', ['Node', '#Accepted', '#Published', '#Received', '#Rows written', '#Rows read', '#Rows pushed', '#Wake-ups push', '#Wake-ups poll', '#Trims', '#Gaps', '#Errors'],
      list.filter(function (n) { return n.last && n.last.backplane; }).map(function (n) {
        var b = n.last.backplane;
        return [nodeCell(n), b.accepted, b.published, b.received, b.rowsWritten, b.rowsRead, b.rowsPushed, b.wakeupsPush, b.wakeupsPoll, b.trims, b.gaps, b.errors];
      }), 'No backplane.');

    var errors = [];
    list.forEach(function (n) {
      ((n.last && n.last.errors) || []).forEach(function (e) { errors.push({ n: n, e: e }); });
    });
    errors.sort(function (a, b) { return b.e.at - a.e.at; });
    table('errors', ['Time', 'Node', 'Where', 'Message'], errors.slice(0, 50).map(function (x) {
      return [new Date(x.e.at).toLocaleTimeString(), nodeCell(x.n), String(x.e.where), el('td', { class: 'message' }, [String(x.e.message)])];
    }), 'No errors reported.');
  }

  window.addEventListener('resize', scheduleRender);
  render();
  connect();
})();
`;
