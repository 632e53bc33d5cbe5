/**
 * Media attachments on R2. Uploads stream straight into the bucket (never
 * buffered in the Worker) with their SHA-256 computed on the way; a message
 * carries metadata only, and the bytes are fetched lazily, with ranges, by users
 * who can see an entry that references them (membership history applies).
 */
import { Hono } from "hono";
import { z } from "zod";
import { settings } from "../config/settings";
import { call } from "../platform/rpc";
import { mediaOwner, newMediaId } from "../protocol/ids";
import { attachmentSchema } from "../protocol/responses";
import { mediaId, uploadQuerySchema } from "../protocol/schemas";
import type { AppEnv } from "../worker/auth";
import { ApiError, unwrap } from "../worker/errors";
import { doc, MEDIA } from "../worker/openapi";
import { valid } from "../worker/validate";
import { etagListed, rangeOf } from "./conditions";
import { mediaKey } from "./keys";

function hex(buf: ArrayBuffer): string {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

const DOWNLOAD_HEADERS = {
  ETag: "the object's entity tag (send If-None-Match to revalidate)",
  "x-content-sha256": { description: "hex SHA-256 of the whole object", schema: { type: "string", pattern: "^[0-9a-f]{64}$" } },
  "Cache-Control": "private, max-age=31536000, immutable",
  "Accept-Ranges": { description: "bytes", schema: { type: "string", enum: ["bytes"] } },
};
const LENGTH = { description: "bytes in this response", schema: { type: "integer", minimum: 0 } };

export const media = new Hono<AppEnv>()
  .post(
    "/",
    doc({
      summary: "Upload media (streamed into R2); reference it from a message's `attachments`",
      description: "Raw bytes as the body, with Content-Type (an allowed type) and Content-Length (≤ MEDIA_MAX_BYTES). Optional ?preview= (≤ 4,096 characters: a blurhash or tiny data URL) travels inline with the metadata.",
      tag: "media",
      ok: { status: 201, description: "stored: reference media_id from a message's attachments", schema: attachmentSchema },
      errors: ["invalid_request", "forbidden", "payload_too_large"],
      body: "media",
    }),
    valid("query", uploadQuerySchema),
    async (c) => {
      const env = c.env;
      const { maxBytes, types, quotaBytes } = settings(env).media;
      const mime = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
      if (!types.includes(mime)) throw new ApiError("invalid_request", `content-type must be one of ${types.join(", ")}`);
      const length = Number(c.req.header("content-length"));
      if (!Number.isSafeInteger(length) || length <= 0) throw new ApiError("invalid_request", "a Content-Length header (> 0) is required");
      if (length > maxBytes) throw new ApiError("payload_too_large", `media is over ${maxBytes} bytes`);
      const body = c.req.raw.body;
      if (!body) throw new ApiError("invalid_request", "empty body");
      const { preview } = c.req.valid("query");
      const user = c.var.user;
      const id = newMediaId(user);
      unwrap(await call(env.USERS, user, "reserveMedia", id, length, mime, preview ?? null, quotaBytes));
      try {
        const [toDigest, toBucket] = body.tee();
        const digest = new crypto.DigestStream("SHA-256");
        const fixed = new FixedLengthStream(length);
        const [sum] = await Promise.all([
          toDigest.pipeTo(digest).then(() => digest.digest),
          toBucket.pipeTo(fixed.writable),
          env.MEDIA.put(mediaKey(id), fixed.readable, { httpMetadata: { contentType: mime }, customMetadata: { owner: user } }),
        ]);
        const sha256 = hex(sum);
        await call(env.USERS, user, "commitMedia", id, sha256);
        return c.json({ media_id: id, size: length, mime, sha256, ...(preview ? { preview } : {}) }, 201);
      } catch (err) {
        // Nothing half-stored stays: the object (if any) and the reservation go.
        await env.MEDIA.delete(mediaKey(id));
        await call(env.USERS, user, "abortMedia", id);
        throw new ApiError("invalid_request", `upload failed: the body did not match Content-Length (${err instanceof Error ? err.message : "stream error"})`);
      }
    },
  )
  .get(
    "/:media_id",
    doc({
      summary: "Download media if you can see an entry that references it (Range, If-None-Match and If-Match supported)",
      description: "The owner, and users who can see an entry that references the media under membership history. The body's Content-Type is the one it was uploaded with.",
      tag: "media",
      ok: { status: 200, description: "the bytes", contentType: MEDIA, headers: { ...DOWNLOAD_HEADERS, "Content-Length": LENGTH } },
      also: [
        {
          status: 206,
          description: "the requested range (Range: bytes=first-last)",
          contentType: MEDIA,
          headers: {
            ...DOWNLOAD_HEADERS,
            "Content-Length": LENGTH,
            "Content-Range": { description: "bytes first-last/size", schema: { type: "string", pattern: "^bytes \\d+-\\d+/\\d+$" } },
          },
        },
        { status: 304, description: "not modified (If-None-Match matched), no body", headers: DOWNLOAD_HEADERS },
      ],
      errors: ["invalid_request", "forbidden", "not_found", "precondition_failed", "range_not_satisfiable"],
    }),
    valid("param", z.object({ media_id: mediaId })),
    async (c) => {
      const id = c.req.valid("param").media_id;
      const owner = mediaOwner(id)!;
      const info = await call(c.env.USERS, owner, "mediaInfo", id);
      if (!info) throw new ApiError("not_found", "no such media");
      if (c.var.user !== owner) {
        let allowed = false;
        for (const conv of info.conversations) {
          if (await call(c.env.CONVERSATIONS, conv, "canSeeMedia", c.var.user, id)) {
            allowed = true;
            break;
          }
        }
        if (!allowed) throw new ApiError("forbidden", "you cannot see an entry that references this media");
      }
      const size = info.attachment.size;
      const range = rangeOf(c.req.header("range"), size);
      if (range.kind === "unsatisfiable") {
        throw new ApiError("range_not_satisfiable", `the range is outside the ${size} bytes`, { headers: { "content-range": `bytes */${size}` } });
      }
      const object = await c.env.MEDIA.get(mediaKey(id), {
        onlyIf: c.req.raw.headers,
        ...(range.kind === "part" ? { range: { offset: range.offset, length: range.length } } : {}),
      });
      if (object === null) throw new ApiError("not_found", "no such media");
      const headers = new Headers({
        etag: object.httpEtag,
        "accept-ranges": "bytes",
        // Content never changes under an id, but it is private to the conversation's members.
        "cache-control": "private, max-age=31536000, immutable",
        "content-type": info.attachment.mime,
        "x-content-sha256": info.attachment.sha256,
      });
      if (!("body" in object)) {
        // R2 withheld the body: If-None-Match matched (304), or If-Match / If-Unmodified-Since failed (412).
        const ifMatch = c.req.header("if-match");
        const ifNoneMatch = c.req.header("if-none-match");
        if (ifNoneMatch !== undefined && etagListed(ifNoneMatch, object.httpEtag) && (ifMatch === undefined || etagListed(ifMatch, object.httpEtag))) {
          return new Response(null, { status: 304, headers });
        }
        throw new ApiError("precondition_failed", "the media does not match If-Match / If-Unmodified-Since");
      }
      if (range.kind === "part") {
        headers.set("content-range", `bytes ${range.offset}-${range.offset + range.length - 1}/${size}`);
        headers.set("content-length", String(range.length));
        return new Response(object.body, { status: 206, headers });
      }
      headers.set("content-length", String(object.size));
      return new Response(object.body, { status: 200, headers });
    },
  );
