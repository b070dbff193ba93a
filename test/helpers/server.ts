// Starts a Hubwire server with the test hub at /test on a free port.

import { getAccessToken, type HubOptions, Hubwire, type HubwireOptions } from 'hubwire';
import { createTestHub, newObservations, type Observations } from './test-hub.js';

export interface TestServer {
  hubwire: Hubwire;
  port: number;
  url: string;
  /** What this server's test hub saw. */
  observations: Observations;
  close(): Promise<void>;
}

export async function startTestServer(options: HubwireOptions = {}, hubOptions: HubOptions = {}): Promise<TestServer> {
  const hubwire = new Hubwire({
    // The test user is whoever the access token names.
    authenticate: (request) => {
      const token = getAccessToken(request);
      return token ? { id: token } : undefined;
    },
    allowStatefulReconnects: true,
    onError: () => {},
    ...options,
  });
  const observations = newObservations();
  hubwire.mapHub('/test', createTestHub(observations), hubOptions);
  const port = await hubwire.listen(0);
  return { hubwire, port, url: `http://127.0.0.1:${port}/test`, observations, close: () => hubwire.close() };
}
