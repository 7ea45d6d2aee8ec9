/**
 * Every name `value` answers to as options, as the library reads them (by
 * name): its own keys, those defined not enumerable too, and those of the
 * prototypes of its class (a getter), up to the `Object.prototype` of its
 * realm (the one prototype without a prototype that has `isPrototypeOf` of
 * its own: options that hold such a key are still read); not a class's own
 * `constructor`. A typo written any of those ways is then refused, as a
 * plain key's is, never taken silently. A value that is no object (a
 * function, a primitive) has none: its type is refused elsewhere.
 */
export function optionKeys(value: unknown): string[] {
  const keys: string[] = [];
  for (let at = value; typeof at === "object" && at; at = Object.getPrototypeOf(at)) {
    if (at !== value && !Object.getPrototypeOf(at) && Object.hasOwn(at, "isPrototypeOf")) break;
    // Every key's descriptor is read first (`Object.keys`), as `for…in` reads it: one that cannot be (a Proxy's
    // trap throws) is refused. A class's `constructor` (not enumerable) is no option; one written as a key is.
    const listed = Object.keys(at);
    for (const key of Object.getOwnPropertyNames(at))
      if ((at === value || key !== "constructor" || listed.includes(key)) && !keys.includes(key)) keys.push(key);
  }
  return keys;
}
