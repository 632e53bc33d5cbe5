/** Where a media object's bytes live in the R2 bucket. */
export function mediaKey(mediaId: string): string {
  return `media/${mediaId}`;
}
