// The generated `/signalr/hubs` (and `/signalr/js`) script: proxies for every classic hub, so pages written for
// SignalR 2 (`$.connection.chatHub.server.send(...)`, `chat.client.x = function () {}`) run unchanged.

import type { ClassicHub } from './classic-hub.js';
import { camelCaseName } from './classic-hub.js';

/** A JavaScript string literal (JSON is one), safe inside a script element. */
function literal(value: string): string {
  return JSON.stringify(value).replace(
    /[<>\u2028\u2029]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function hubProxy(hub: ClassicHub): string {
  const key = literal(hub.proxyName);
  const methods = hub.endpoint.registry
    .names()
    .sort((a, b) => a.localeCompare(b))
    .map(
      (method) =>
        `        ${literal(camelCaseName(method))}: function () {\n` +
        `          return proxy.invoke.apply(proxy, $.merge([${literal(method)}], $.makeArray(arguments)));\n` +
        '        }',
    );
  return (
    '    (function () {\n' +
    `      var proxy = proxies[${key}] = connection.createHubProxy(${key});\n` +
    '      proxy.client = {};\n' +
    `      proxy.server = {\n${methods.join(',\n')}\n      };\n` +
    '    })();\n'
  );
}

/** The proxy script for `hubs`, whose connection URL is `basePath` (the classic mount, e.g. `/signalr`). */
export function generateHubsProxy(hubs: readonly ClassicHub[], basePath: string): string {
  const sorted = [...hubs].sort((a, b) => a.proxyName.localeCompare(b.proxyName));
  return `/*! Hubwire: generated proxies for the classic SignalR 2 JavaScript client */
(function ($, window, undefined) {
  "use strict";

  if (typeof ($.signalR) !== "function") {
    throw new Error("SignalR: SignalR is not loaded. Please ensure jquery.signalR-x.js is referenced before ~/signalr/js.");
  }

  var signalR = $.signalR;

  function callClient(proxy, fn) {
    return function () { fn.apply(proxy, $.makeArray(arguments)); };
  }

  // Subscribes (or unsubscribes) every function the page put on a proxy's \`client\` object. The client library
  // binds them at start, so only hubs with client functions are listed in connectionData.
  function bindClientFunctions(proxies, subscribe) {
    $.each(proxies, function (name, proxy) {
      if (!proxy.hubName) return;
      $.each(proxy.client, function (method, fn) {
        if (typeof fn !== "function") return;
        // The page's own function is the identity, so off() finds what on() bound through the wrapper.
        if (subscribe) proxy.on(method, callClient(proxy, fn), fn);
        else proxy.off(method, callClient(proxy, fn), fn);
      });
    });
  }

  $.hubConnection.prototype.createHubProxies = function () {
    var proxies = {};
    var connection = this;
    this.starting(function () {
      bindClientFunctions(proxies, true);
      this._registerSubscribedHubs();
    }).disconnected(function () {
      // Unbinds on disconnect so that a later start does not bind the same functions twice.
      bindClientFunctions(proxies, false);
    });

${sorted.map(hubProxy).join('\n')}
    return proxies;
  };

  signalR.hub = $.hubConnection(${literal(basePath)}, { useDefaultPath: false });
  $.extend(signalR, signalR.hub.createHubProxies());

}(window.jQuery, window));
`;
}
