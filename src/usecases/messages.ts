/**
 * Sending a message: the same rules over HTTP (POST …/messages) and over a
 * live socket (`send` frames). The body is serialized once and held to the
 * contract's 64 KiB; attachments must be the sender's finished uploads and are
 * recorded as referenced before the send, so no sweep can race it.
 */
import { fail, ok, type Result } from "../protocol/errors";
import { LIMITS } from "../protocol/limits";
import type { SendMessageRequest } from "../protocol/schemas";
import type { SendResult, SenderRef } from "../protocol/types";
import type { Ports } from "./ports";

const encoder = new TextEncoder();

/** A message or queue body as JSON text, or payload_too_large past the contract's limit. */
export function serializeBody(body: unknown): Result<string> {
  const json = JSON.stringify(body);
  // UTF-8 takes 1 to 3 bytes per UTF-16 unit: only bodies between those bounds need encoding to be measured.
  const over = json.length > LIMITS.maxBodyBytes || (json.length * 3 > LIMITS.maxBodyBytes && encoder.encode(json).byteLength > LIMITS.maxBodyBytes);
  return over ? fail("payload_too_large", `body is over ${LIMITS.maxBodyBytes} bytes serialized`) : ok(json);
}

export async function sendMessage(ports: Ports, sender: SenderRef, conversationId: string, req: SendMessageRequest): Promise<Result<SendResult>> {
  const body = serializeBody(req.body);
  if (!body.ok) return body;
  let attachments: Awaited<ReturnType<ReturnType<Ports["user"]>["attachMedia"]>> = ok([]);
  if (req.attachments) attachments = await ports.user(sender.user).attachMedia(req.attachments, conversationId);
  if (!attachments.ok) return attachments;
  return ports.conversation(conversationId).send(sender, req.client_msg_id, body.value, attachments.value);
}
