import { describe, expect, it } from "vitest";
import type { AdmissionRequest } from "../../src/core/ports.js";
import { ask, settings, setup, useLocalProvider } from "../support/pipeline.js";

useLocalProvider();

describe("the reservation outlives settlement", () => {
  it("expires after the function's deadline + grace, even with a short timeoutMs (settlement retries until that deadline)", async () => {
    const t = setup();
    const requests: AdmissionRequest[] = [];
    const admit = t.executions.admit.bind(t.executions);
    t.executions.admit = (request) => {
      requests.push(request);
      return admit(request);
    };
    await t.run(ask("local-mini", "hi", { timeoutMs: 1_000 }));
    const [request] = requests;
    expect(request!.expireAt - request!.now).toBeGreaterThanOrEqual(settings.functionTimeoutMs! + settings.limits.reservationGraceMs);
  });
});
