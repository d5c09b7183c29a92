/** Media types as the import and the caller reason about them. */

export const isJsonMedia = (type: string): boolean => /^application\/(.+\+)?json(\s*;.*)?$/i.test(type) || /[/+]json\b/i.test(type);
export const isFormMedia = (type: string): boolean => /^application\/x-www-form-urlencoded\b/i.test(type);
export const isMultipartMedia = (type: string): boolean => /^multipart\/form-data\b/i.test(type);
/** Answers read as text: text/*, XML, JavaScript, form data, YAML, … */
export const isTextMedia = (type: string): boolean =>
  /^text\//i.test(type) ||
  /[/+]xml\b/i.test(type) ||
  /^application\/(javascript|x-www-form-urlencoded|yaml|x-yaml|graphql|sql|csv)\b/i.test(type);

/** Order of preference for a request body: JSON, then forms, then text, then anything else. */
export function mediaRank(type: string): number {
  if (isJsonMedia(type)) return 0;
  if (isFormMedia(type)) return 1;
  if (isMultipartMedia(type)) return 2;
  if (isTextMedia(type)) return 3;
  return 4;
}

/** A concrete Content-Type for a listed media range (`*\/*`, `image/*`) and the parameters it may carry. */
export function concreteMediaType(type: string): string {
  const bare = type.split(';')[0]!.trim();
  if (bare === '*/*' || bare === '') return 'application/octet-stream';
  if (bare.endsWith('/*')) return `${bare.slice(0, -1)}octet-stream`;
  return type.trim();
}
