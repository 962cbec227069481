import type { DocumentSnapshot } from "firebase-admin/firestore";
import { describe, expect, it } from "vitest";
import { lanesToRead, previousMonth } from "../../src/adapters/user-state-repo.js";
import { lanesFor } from "../../src/core/limits.js";

/** Lane 0 as admission reads it: only its data matters here. */
const lane0 = (data: Record<string, unknown> | undefined) => ({ exists: data !== undefined, data: () => data }) as unknown as DocumentSnapshot;

describe("lanesToRead", () => {
  it("reads the lanes the limits call for, one for a user without overrides", () => {
    expect(lanesToRead(lane0(undefined), "2026-11")).toBe(1);
    // 300 a minute is 10 writes a second: ceil(10 / 0.8) = 13 lanes, whatever fewer lanes the month used.
    expect(lanesFor({ perMinute: 300 })).toBe(13);
    expect(lanesToRead(lane0({ perMinute: 300 }), "2026-11")).toBe(13);
    expect(lanesToRead(lane0({ perMinute: 300, lanesUsed: { month: "2026-11", lanes: 2 } }), "2026-11")).toBe(13);
  });

  it("keeps reading the lanes of a user whose limits were lowered, through the month after", () => {
    const lowered = lane0({ lanesUsed: { month: "2026-12", lanes: 10 } });
    expect(lanesToRead(lowered, "2026-12")).toBe(10);
    // An execution admitted on 31 December settles on its lane in January.
    expect(lanesToRead(lowered, "2027-01")).toBe(10);
    expect(lanesToRead(lowered, "2027-02")).toBe(1);
    expect(lanesToRead(lowered, "2026-11")).toBe(1);
  });

  it("ignores a malformed record", () => {
    expect(lanesToRead(lane0({ lanesUsed: { month: "2026-12", lanes: "10" } }), "2026-12")).toBe(1);
    expect(lanesToRead(lane0({ lanesUsed: { month: "2026-12", lanes: 1_000 } }), "2026-12")).toBe(32);
  });
});

describe("previousMonth", () => {
  it("crosses a year", () => {
    expect(previousMonth("2027-01")).toBe("2026-12");
    expect(previousMonth("2026-10")).toBe("2026-09");
  });
});
