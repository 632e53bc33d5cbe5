import { LIMITS } from "../protocol/limits";
import { ApiError } from "./errors";

const encoder = new TextEncoder();

/** Serializes a message/queue body once, refusing it past the contract's 64 KiB. */
export function serializeBody(body: unknown): string {
  const json = JSON.stringify(body);
  if (encoder.encode(json).byteLength > LIMITS.maxBodyBytes) {
    throw new ApiError("payload_too_large", `body is over ${LIMITS.maxBodyBytes} bytes serialized`);
  }
  return json;
}
