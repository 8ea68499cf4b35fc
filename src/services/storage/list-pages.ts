/** One page of a bucket listing: names relative to the listed folder, and the token of the next page. */
export interface ListPage {
  names: string[];
  next: string | undefined;
}

/**
 * Streams the names of a paginated listing. The next page is requested as soon as the consumer
 * takes a name of the current one, so a listing of 118K keys (~120 round trips) overlaps its
 * requests with the consumer's work; a consumer that stops after one name (an existence check)
 * causes no extra request.
 */
export async function* listPages(fetchPage: (token: string | undefined) => Promise<ListPage>): AsyncGenerator<string> {
  let page = await fetchPage(undefined);
  let next: Promise<ListPage> | null = null;
  try {
    for (;;) {
      const prefetch = () => (next ??= page.next === undefined ? null : fetchPage(page.next));
      for (const name of page.names) {
        yield name;
        prefetch();
      }
      const pending: Promise<ListPage> | null = prefetch();
      if (!pending) return;
      page = await pending;
      next = null;
    }
  } finally {
    // Stopped early: the prefetched page is not wanted, and its failure must not go unhandled.
    (next as Promise<ListPage> | null)?.catch(() => undefined);
  }
}
