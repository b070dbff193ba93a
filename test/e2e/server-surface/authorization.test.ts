// Per-endpoint authorization: hub policies (roles, a JWT-style role claim, a predicate, any authenticated user) at
// negotiate, at the upgrade and on every transport request, and method policies on invocations.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MATRIX, readStream } from '../../helpers/clients.js';
import { negotiate, tryUpgrade } from '../../helpers/http.js';
import { clientPool, type SurfaceServer, startFailure, startSurfaceServer, T } from '../../helpers/surface-server.js';
import { TestHub } from '../../helpers/test-hub.js';

class AdminHub extends TestHub {}
class PredicateHub extends TestHub {}
class MembersHub extends TestHub {}
class MethodPolicyHub extends TestHub {}

let server: SurfaceServer;
before(async () => {
  server = await startSurfaceServer((hubwire) => {
    hubwire.mapHub('/admin', AdminHub, { authorize: { roles: ['admin'] } });
    hubwire.mapHub('/predicate', PredicateHub, { authorize: (user) => (user as { id?: string })?.id === 'bob' });
    hubwire.mapHub('/members', MembersHub, { requireAuthenticatedUser: true });
    hubwire.mapHub('/methods', MethodPolicyHub, {
      methods: {
        adminOnly: { authorize: { roles: ['admin'] } },
        ownerOnly: { authorize: (_user, context) => context?.userIdentifier === 'owner' },
      },
    });
  });
});
after(async () => {
  await server.hubwire.close();
});

describe('per-endpoint options: authorization policies', () => {
  const connect = clientPool(() => server.base);

  test('negotiate without the required credentials → 401 with an empty body', T, async () => {
    for (const [path, headers] of [
      ['/admin', {}],
      ['/admin', { Authorization: 'Bearer alice' }],
      ['/admin', { Authorization: 'Bearer alice:ops,dev' }],
      ['/admin', { Authorization: 'Bearer alice:=ops' }],
      ['/admin', { Authorization: 'Bearer invalid' }],
      ['/predicate', { Authorization: 'Bearer alice' }],
      ['/members', {}],
    ] as const) {
      const response = await negotiate(`${server.base}${path}`, headers);
      assert.equal(response.status, 401, `${path} ${JSON.stringify(headers)}`);
      assert.equal(await response.text(), '');
    }
    assert.equal((await negotiate(`${server.base}/admin`, { Authorization: 'Bearer root:ops,admin' })).status, 200);
    assert.equal((await negotiate(`${server.base}/admin`, { Authorization: 'Bearer root:=admin' })).status, 200);
    // The access_token query parameter counts as credentials too.
    assert.equal((await negotiate(`${server.base}/admin?access_token=root:admin`)).status, 200);
  });

  test(
    "{ roles } accepts a JWT-style `role` claim holding several roles (ASP.NET Core's multi-role tokens)",
    T,
    async () => {
      const response = await negotiate(`${server.base}/admin`, { Authorization: 'Bearer root:=ops,admin' });
      assert.equal(response.status, 200);
      await response.arrayBuffer();
    },
  );

  test('a WebSocket without negotiation is authorized at the upgrade', T, async () => {
    const refused = await tryUpgrade(`${server.base}/admin`);
    assert.equal((refused as { status: number }).status, 401);
    const wrongRole = await tryUpgrade(`${server.base}/admin?access_token=alice:ops`);
    assert.equal((wrongRole as { status: number }).status, 401);
    assert.deepEqual(await tryUpgrade(`${server.base}/admin?access_token=root:admin`), { open: true });
    assert.deepEqual(await tryUpgrade(`${server.base}/admin`, { headers: { Authorization: 'Bearer root:admin' } }), {
      open: true,
    });
  });

  test("a transport request must come from the user who negotiated (another user's token → 403)", T, async () => {
    const { connectionToken } = (await (
      await negotiate(`${server.base}/members`, { Authorization: 'Bearer alice' })
    ).json()) as { connectionToken: string };
    const stolen = await fetch(`${server.base}/members?id=${connectionToken}`, {
      headers: { Authorization: 'Bearer mallory' },
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(stolen.status, 403);
    const anonymous = await fetch(`${server.base}/members?id=${connectionToken}`, {
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(anonymous.status, 401);
  });

  for (const { transport, protocol } of MATRIX) {
    test(
      `${transport} + ${protocol}: hub policies (roles, role, predicate, authenticated) and method policies`,
      T,
      async () => {
        const options = { transport, protocol } as const;
        for (const [path, token] of [
          ['/admin', undefined],
          ['/admin', 'alice:ops'],
          ['/admin', 'alice:=ops'],
          ['/admin', 'invalid'],
          ['/predicate', 'alice'],
          ['/members', undefined],
        ] as const) {
          const error = await startFailure(`${server.base}${path}`, { ...options, token });
          assert.match(error.message, /Status code '401'/, `${path} with ${token}`);
        }
        const admin = await connect('/admin', { ...options, token: 'root:ops,admin' });
        assert.deepEqual(await admin.invoke('getUser'), { id: 'root', roles: ['ops', 'admin'] });
        const adminByRole = await connect('/admin', { ...options, token: 'root2:=admin' });
        assert.equal(await adminByRole.invoke('getUserId'), 'root2');
        const bob = await connect('/predicate', { ...options, token: 'bob' });
        assert.equal(await bob.invoke('getUserId'), 'bob');
        const member = await connect('/members', { ...options, token: 'dave' });
        assert.equal(await member.invoke('getUserId'), 'dave');

        // Method policies: a refused invocation is an invocation error; the connection lives on.
        const user = await connect('/methods', { ...options, token: 'erin:ops' });
        await assert.rejects(user.invoke('adminOnly'), {
          message: "Failed to invoke 'adminOnly' because user is unauthorized.",
        });
        await assert.rejects(user.invoke('ownerOnly'), /because user is unauthorized/);
        const anonymous = await connect('/methods', options);
        await assert.rejects(anonymous.invoke('adminOnly'), /because user is unauthorized/);
        assert.equal(await user.invoke('echo', 'still here'), 'still here');
        const methodAdmin = await connect('/methods', { ...options, token: 'frank:admin' });
        assert.equal(await methodAdmin.invoke('adminOnly'), 'admin stuff');
        await assert.rejects(methodAdmin.invoke('ownerOnly'), /because user is unauthorized/);
        const owner = await connect('/methods', { ...options, token: 'owner' });
        assert.equal(await owner.invoke('ownerOnly'), 'owner stuff', 'a predicate sees the caller context');
        // A refused streaming invocation fails the same way.
        await assert.rejects(readStream(user.stream('adminOnly')), /because user is unauthorized/);
      },
    );
  }
});
