import { isMap, isScalar, isSeq, type Document, type Pair } from 'yaml';

/** A key path into a YAML or JSON document: map keys and sequence indices. */
export type PathSeg = string | number;

/**
 * The YAML node at `path` in `doc`, or the nearest ancestor that exists (the document's root when
 * none does): what a located error message points at.
 */
export function yamlNodeAt(doc: Document, path: readonly PathSeg[]): unknown {
  let node: unknown = doc.contents;
  let best: unknown = node;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p: Pair) => (isScalar(p.key) ? p.key.value : p.key) === seg);
      if (!pair) break;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
    } else break;
    if (!node) break;
    best = node;
  }
  return best;
}
