"""search postings (PostgreSQL): a search's total counted from a B-tree of words, read without the table

A total was counted from ``pg_trgm``'s index, which is lossy: PostgreSQL read every match's row from the
table to check its text, so the first search after a start read the whole table from disk (3,000 pages
for 30,000 matches at 1M versions). ``search_postings`` holds one row per word of each entry's text (a
word: a run of letters and digits; one longer than 200 characters is held as pieces of 200 starting
every 100, so any part of it of up to 100 characters is inside one piece), with the entry's views and
id, all in the primary key's index: a count is an index-only scan over the matches' words. A text of more
than 1,000 words or with a word of more than 1,000 characters (a nuspec may be 1 MiB: a megabyte-long word
would be 10,000 pieces, a second of work each) is posted as one empty word instead, and such entries are
checked by their text. ``search_words`` holds the words (a trigram index finds those holding a term).
Triggers on ``search_entries`` keep both in the transaction of every change, as the SQLite FTS5 table is
kept.

Revision ID: search_postings
Revises: account_ids
"""

from alembic import op

revision = "search_postings"
down_revision = "account_ids"
branch_labels = None
depends_on = None

# Row triggers (a statement's trigger would fire as often: rows are inserted one statement each), planned
# as index lookups whatever the tables' statistics say: a hash join would read every word or posting.
_ADD = """
CREATE FUNCTION search_postings_add() RETURNS trigger LANGUAGE plpgsql
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
BEGIN
  -- the text split once: the words just posted are the ones to add to ``search_words``
  WITH posted AS (
    INSERT INTO search_postings
      (entry_id, registration_id, in_release, in_prerelease, in_semver2, in_all, word)
      SELECT NEW.id, NEW.registration_id, NEW.in_release, NEW.in_prerelease, NEW.in_semver2, NEW.in_all, w
      FROM search_words_of(NEW.search_text) w
      RETURNING word
  )
  INSERT INTO search_words (word)
    SELECT p.word FROM posted p
    WHERE p.word <> '' AND NOT EXISTS (SELECT 1 FROM search_words s WHERE s.word = p.word);
  RETURN NULL;
END $$
"""
_DROP = """
CREATE FUNCTION search_postings_drop() RETURNS trigger LANGUAGE plpgsql
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
BEGIN
  DELETE FROM search_postings
    WHERE word = ANY (ARRAY(SELECT search_words_of(OLD.search_text))) AND entry_id = OLD.id;
  RETURN NULL;
END $$
"""
# An update that changes what the postings hold.
_CHANGED = (
    "(OLD.search_text, OLD.registration_id, OLD.in_release, OLD.in_prerelease, OLD.in_semver2, OLD.in_all)"
    " IS DISTINCT FROM"
    " (NEW.search_text, NEW.registration_id, NEW.in_release, NEW.in_prerelease, NEW.in_semver2, NEW.in_all)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite counts through its FTS5 trigram table, which needs no check of the text
    op.execute(
        """
        CREATE FUNCTION search_words_of(t text) RETURNS SETOF text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE ROWS 20 AS $$
          WITH words AS (
            SELECT DISTINCT w FROM regexp_split_to_table(t, '[^[:alnum:]]+') AS w WHERE w <> ''
          ), posted AS (
            SELECT count(*) <= 1000 AND coalesce(max(length(w)), 0) <= 1000 AS ok FROM words
          )
          SELECT DISTINCT substr(w, k + 1, 200)
          FROM words, posted,
               generate_series(0, CASE WHEN length(w) <= 200 THEN 0 ELSE length(w) - 1 END, 100) AS k
          WHERE posted.ok
          UNION ALL
          SELECT '' FROM posted WHERE NOT posted.ok
        $$
        """
    )
    op.execute(
        """
        CREATE TABLE search_postings (
          word text NOT NULL,
          entry_id integer NOT NULL,
          registration_id integer NOT NULL,
          in_release boolean NOT NULL,
          in_prerelease boolean NOT NULL,
          in_semver2 boolean NOT NULL,
          in_all boolean NOT NULL,
          CONSTRAINT search_postings_pkey PRIMARY KEY (word, entry_id)
            INCLUDE (registration_id, in_release, in_prerelease, in_semver2, in_all)
        )
        """
    )
    # No unique word: two pushes bringing the same new word never wait for each other (a word held twice
    # costs a row); ``word`` indexed for the triggers' check, trigrams for the words holding a term.
    op.execute("CREATE TABLE search_words (word text NOT NULL)")
    op.execute("CREATE INDEX ix_search_words_word ON search_words (word)")
    op.execute("CREATE INDEX ix_search_words_trgm ON search_words USING gin (word gin_trgm_ops)")
    for function in (_ADD, _DROP):
        op.execute(function)
    op.execute(
        "CREATE TRIGGER search_postings_add AFTER INSERT ON search_entries"
        " FOR EACH ROW EXECUTE FUNCTION search_postings_add()"
    )
    op.execute(
        "CREATE TRIGGER search_postings_drop AFTER DELETE ON search_entries"
        " FOR EACH ROW EXECUTE FUNCTION search_postings_drop()"
    )
    # Entries are rewritten by a delete and an insert; an update is a download count's, which changes
    # nothing here. One that does is the delete of the row before and the insert of the row after (row
    # triggers of one event fire in the order of their names).
    op.execute(
        "CREATE TRIGGER search_postings_change_1_drop AFTER UPDATE ON search_entries FOR EACH ROW"
        f" WHEN ({_CHANGED}) EXECUTE FUNCTION search_postings_drop()"
    )
    op.execute(
        "CREATE TRIGGER search_postings_change_2_add AFTER UPDATE ON search_entries FOR EACH ROW"
        f" WHEN ({_CHANGED}) EXECUTE FUNCTION search_postings_add()"
    )
    op.execute(
        "INSERT INTO search_postings"
        " (entry_id, registration_id, in_release, in_prerelease, in_semver2, in_all, word)"
        " SELECT e.id, e.registration_id, e.in_release, e.in_prerelease, e.in_semver2, e.in_all, w"
        " FROM search_entries e, LATERAL search_words_of(e.search_text) w"
    )
    op.execute("INSERT INTO search_words (word) SELECT DISTINCT word FROM search_postings")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for trigger in (
        "search_postings_add",
        "search_postings_drop",
        "search_postings_change_1_drop",
        "search_postings_change_2_add",
    ):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON search_entries")
    op.execute("DROP FUNCTION IF EXISTS search_postings_add()")
    op.execute("DROP FUNCTION IF EXISTS search_postings_drop()")
    op.execute("DROP TABLE IF EXISTS search_words")
    op.execute("DROP TABLE IF EXISTS search_postings")
    op.execute("DROP FUNCTION IF EXISTS search_words_of(text)")
