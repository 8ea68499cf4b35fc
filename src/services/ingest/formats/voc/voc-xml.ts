import { SaxesParser } from 'saxes';

/**
 * One Pascal VOC annotation file, as the VOC devkit documents it:
 * `<annotation><folder><filename><path><source>…</source><size><width><height><depth></size>
 * <segmented><object><name><pose><truncated><difficult><occluded>?<bndbox><xmin><ymin><xmax><ymax>
 * </bndbox><part>…</part></object>…</annotation>`.
 *
 * Values stay the text the file holds (trimmed); turning them into numbers is the reader's business
 * (voc-records.ts). Elements the format does not define are kept as `extra`, element order is free,
 * attributes are ignored (the format uses none).
 */
export interface VocDocument {
  filename: string | null;
  path: string | null;
  width: string | null;
  height: string | null;
  /** Children of `<annotation>` other than filename, size's width and height, and object. */
  extra: Record<string, unknown>;
  objects: VocObject[];
}

export interface VocObject {
  /** null: no `<name>` element. */
  name: string | null;
  /** null: no `<bndbox>` element; a coordinate is null when its element is absent. */
  bndbox: VocBox | null;
  /** pose, truncated, difficult, occluded, part… (everything but name and bndbox), as generic values. */
  extra: Record<string, unknown>;
}

export interface VocBox {
  xmin: string | null;
  ymin: string | null;
  xmax: string | null;
  ymax: string | null;
}

/** An XML element reduced to what VOC needs: its name, its trimmed text, its child elements. */
interface Element {
  name: string;
  text: string;
  children: Element[];
}

/** A file that is not well-formed XML, or not a VOC annotation. */
export class VocXmlError extends Error {}

/**
 * Parses VOC annotation files with saxes (a strict, streaming, non-validating XML parser: a file
 * that is not well-formed is refused rather than guessed at). One instance parses many files in
 * turn; it holds nothing between them but the parser.
 */
export class VocXmlParser {
  private parser = this.newParser();
  private stack: Element[] = [];
  private root: Element | null = null;

  private newParser(): SaxesParser {
    // No namespaces, no position tracking beyond line numbers for messages. saxes never fetches
    // external entities or DTDs, so a file cannot make the parser read anything else.
    const p = new SaxesParser({ xmlns: false, position: true });
    p.on('opentag', (tag) => {
      const el: Element = { name: tag.name, text: '', children: [] };
      const parent = this.stack.at(-1);
      if (parent) parent.children.push(el);
      else this.root = el;
      this.stack.push(el);
    });
    p.on('text', (t) => {
      const top = this.stack.at(-1);
      if (top) top.text += t;
    });
    p.on('cdata', (t) => {
      const top = this.stack.at(-1);
      if (top) top.text += t;
    });
    p.on('closetag', () => {
      const el = this.stack.pop();
      if (el) el.text = el.text.trim();
    });
    p.on('error', (e) => {
      throw new VocXmlError(e.message);
    });
    return p;
  }

  /** The document in `xml`; throws VocXmlError when it is not well-formed or its root is not `<annotation>`. */
  parse(xml: string): VocDocument {
    this.stack = [];
    this.root = null;
    try {
      this.parser.write(xml).close();
    } catch (e) {
      // A failed parser is left mid-document: the next file gets a fresh one.
      this.parser = this.newParser();
      if (e instanceof VocXmlError) throw e;
      throw new VocXmlError(e instanceof Error ? e.message : String(e));
    }
    const root = this.root as Element | null;
    this.stack = [];
    this.root = null;
    if (!root) throw new VocXmlError('no root element');
    if (root.name !== 'annotation') throw new VocXmlError(`the root element is <${root.name}>, not <annotation>`);
    return toDocument(root);
  }
}

/** Bytes of a file as text: UTF-8 (a BOM dropped), or UTF-16 when a BOM says so. */
export function decodeXml(bytes: Uint8Array): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return new TextDecoder('utf-16le').decode(bytes);
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return new TextDecoder('utf-16be').decode(bytes);
  return UTF8.decode(bytes);
}

// ignoreBOM: false (the default) drops a leading BOM; invalid sequences become U+FFFD rather than failing.
const UTF8 = new TextDecoder('utf-8');

function toDocument(root: Element): VocDocument {
  const doc: VocDocument = { filename: null, path: null, width: null, height: null, extra: record(), objects: [] };
  for (const el of root.children) {
    switch (el.name) {
      case 'filename':
        doc.filename ??= el.text;
        break;
      case 'path':
        doc.path ??= el.text;
        // Kept too: where the annotator's copy was can tell datasets apart.
        addExtra(doc.extra, el);
        break;
      case 'size': {
        const rest: Element[] = [];
        for (const c of el.children) {
          if (c.name === 'width') doc.width ??= c.text;
          else if (c.name === 'height') doc.height ??= c.text;
          else rest.push(c);
        }
        // depth and anything else under <size>.
        for (const c of rest) addExtra(doc.extra, c);
        break;
      }
      case 'object':
        doc.objects.push(toObject(el));
        break;
      default:
        addExtra(doc.extra, el);
    }
  }
  return doc;
}

function toObject(el: Element): VocObject {
  const obj: VocObject = { name: null, bndbox: null, extra: record() };
  for (const c of el.children) {
    if (c.name === 'name' && obj.name === null) obj.name = c.text;
    else if (c.name === 'bndbox' && obj.bndbox === null) obj.bndbox = toBox(c);
    else if (c.name === 'part') {
      const part = toObject(c);
      ((obj.extra.parts ??= []) as unknown[]).push({ name: part.name, bndbox: part.bndbox, ...part.extra });
    } else addExtra(obj.extra, c);
  }
  return obj;
}

function toBox(el: Element): VocBox {
  const box: VocBox = { xmin: null, ymin: null, xmax: null, ymax: null };
  for (const c of el.children) {
    if (c.name === 'xmin' || c.name === 'ymin' || c.name === 'xmax' || c.name === 'ymax') box[c.name] ??= c.text;
  }
  return box;
}

/**
 * A generic element as JSON: text when it has no children, else an object; a repeated name becomes
 * an array (values are strings or objects, so an array here is always one made for a repeat).
 */
function addExtra(into: Record<string, unknown>, el: Element): void {
  const value = el.children.length === 0 ? el.text : childrenObject(el.children);
  const had = into[el.name];
  if (had === undefined) into[el.name] = value;
  else if (Array.isArray(had)) had.push(value);
  else into[el.name] = [had, value];
}

/**
 * Objects for element names: without a prototype, so that `__proto__`, `constructor`… are plain
 * keys (an element may be named anything), and JSON.stringify writes them as any other.
 */
export const record = (): Record<string, unknown> => Object.create(null) as Record<string, unknown>;

function childrenObject(children: Element[]): Record<string, unknown> {
  const out = record();
  for (const c of children) addExtra(out, c);
  return out;
}
