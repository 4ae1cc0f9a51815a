import { describe, expect, test } from "bun:test";
import { REQUEST_ID_HEADER, requestIdFor } from "../src/request-id.ts";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("requestIdFor", () => {
  test("a well-formed client id is kept", () => {
    for (const id of ["req_01J9ZK3", "6f1c2b9e-7d1a-4a3b-9c7e-2f4d5e6a7b8c", "abc+/=", "trace:1@host.example", "x".repeat(128)]) {
      expect(requestIdFor({ [REQUEST_ID_HEADER]: id })).toBe(id);
    }
  });

  test("a missing, empty, long or unsafe id is replaced by a new UUID v7, never echoed", () => {
    for (const id of [undefined, "", "x".repeat(129), "a b", "id\u0007bell", "<script>", 'quote"s', "new\nline"]) {
      const got = requestIdFor(id === undefined ? {} : { [REQUEST_ID_HEADER]: id });
      expect(got).toMatch(UUID_V7);
      expect(got).not.toBe(id);
    }
  });

  test("new ids are distinct and time-ordered", () => {
    const ids = Array.from({ length: 50 }, () => requestIdFor({}));
    expect(new Set(ids).size).toBe(50);
    expect([...ids].sort()).toEqual(ids);
  });
});
