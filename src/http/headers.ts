/** Reads one header from any `HeadersInit` without building a `Headers`. */
export function headerOf(headers: HeadersInit | undefined, name: string): string | null {
  if (!headers) return null;
  if (headers instanceof Headers) return headers.get(name);
  const wanted = name.toLowerCase();
  if (Array.isArray(headers)) {
    for (const pair of headers) if (pair[0]?.toLowerCase() === wanted) return pair[1] ?? null;
    return null;
  }
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() === wanted) return (headers as Record<string, string>)[key] ?? null;
  }
  return null;
}
