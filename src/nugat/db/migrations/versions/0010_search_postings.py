"""search postings (PostgreSQL): a search's total counted from a B-tree of words, read without the table

A total was counted from ``pg_trgm``'s index, which is lossy: PostgreSQL read every match's row from the
table to check its text, so the first search after a start read the whole table from disk (3,000 pages
for 30,000 matches at 1M versions). ``search_postings`` holds one row per word of each entry's text (a
word: a run of letters and digits; one longer than 200 characters is held as pieces of 200 starting
every 100, so any part of it of up to 100 characters is inside one piece), with the entry's views and
id, all in the primary key's index: a count is an index-only scan over the matches' words. ``search_words``
holds the words (a trigram index finds those holding a term). Triggers on ``search_entries``
keep both in the transaction of every change, as the SQLite FTS5 table is kept.

Revision ID: search_postings
Revises: account_ids
"""

from alembic import op

revision = "search_postings"
down_revision = "account_ids"
branch_labels = None
depends_on = None

_ADD = """
CREATE FUNCTION search_postings_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO search_postings (entry_id, registration_id, in_release, in_prerelease, in_semver2, in_all, word)
    SELECT e.id, e.registration_id, e.in_release, e.in_prerelease, e.in_semver2, e.in_all, w
    FROM added e, LATERAL search_words_of(e.search_text) w;
  INSERT INTO search_words (word)
    SELECT DISTINCT w FROM added e, LATERAL search_words_of(e.search_text) w
    WHERE NOT EXISTS (SELECT 1 FROM search_words s WHERE s.word = w);
  RETURN NULL;
END $$
"""
_DROP = """
CREATE FUNCTION search_postings_drop() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM search_postings p
    USING (SELECT e.id, w FROM dropped e, LATERAL search_words_of(e.search_text) w) d
    WHERE p.word = d.w AND p.entry_id = d.id;
  RETURN NULL;
END $$
"""
# Entries are rewritten by a delete and an insert: an update is a download count's, which changes nothing
# here and costs a join of its rows. Any other is handled as the delete and insert of the rows it changed
# (``o``: a row before, ``e``: after).
_CHANGE = """
CREATE FUNCTION search_postings_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  CREATE TEMP TABLE IF NOT EXISTS search_changed (id integer) ON COMMIT DELETE ROWS;
  INSERT INTO search_changed SELECT e.id FROM added e JOIN dropped o ON o.id = e.id
    WHERE (o.search_text, o.registration_id, o.in_release, o.in_prerelease, o.in_semver2, o.in_all)
      IS DISTINCT FROM
      (e.search_text, e.registration_id, e.in_release, e.in_prerelease, e.in_semver2, e.in_all);
  IF FOUND THEN
    DELETE FROM search_postings p
      USING (SELECT e.id, w FROM dropped e JOIN search_changed c ON c.id = e.id,
             LATERAL search_words_of(e.search_text) w) d
      WHERE p.word = d.w AND p.entry_id = d.id;
    INSERT INTO search_postings
      (entry_id, registration_id, in_release, in_prerelease, in_semver2, in_all, word)
      SELECT e.id, e.registration_id, e.in_release, e.in_prerelease, e.in_semver2, e.in_all, w
      FROM added e JOIN search_changed c ON c.id = e.id, LATERAL search_words_of(e.search_text) w;
    INSERT INTO search_words (word)
      SELECT DISTINCT w
      FROM added e JOIN search_changed c ON c.id = e.id, LATERAL search_words_of(e.search_text) w
      WHERE NOT EXISTS (SELECT 1 FROM search_words s WHERE s.word = w);
    DELETE FROM search_changed;
  END IF;
  RETURN NULL;
END $$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite counts through its FTS5 trigram table, which needs no check of the text
    op.execute(
        """
        CREATE FUNCTION search_words_of(t text) RETURNS SETOF text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
          SELECT DISTINCT substr(w, k + 1, 200)
          FROM regexp_split_to_table(t, '[^[:alnum:]]+') AS w,
               generate_series(0, CASE WHEN length(w) <= 200 THEN 0 ELSE length(w) - 1 END, 100) AS k
          WHERE w <> ''
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
    for function in (_ADD, _DROP, _CHANGE):
        op.execute(function)
    op.execute(
        "CREATE TRIGGER search_postings_add AFTER INSERT ON search_entries REFERENCING NEW TABLE AS added"
        " FOR EACH STATEMENT EXECUTE FUNCTION search_postings_add()"
    )
    op.execute(
        "CREATE TRIGGER search_postings_drop AFTER DELETE ON search_entries REFERENCING OLD TABLE AS dropped"
        " FOR EACH STATEMENT EXECUTE FUNCTION search_postings_drop()"
    )
    op.execute(
        "CREATE TRIGGER search_postings_change AFTER UPDATE ON search_entries"
        " REFERENCING OLD TABLE AS dropped NEW TABLE AS added FOR EACH STATEMENT"
        " EXECUTE FUNCTION search_postings_change()"
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
    for trigger in ("search_postings_add", "search_postings_drop", "search_postings_change"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON search_entries")
        op.execute(f"DROP FUNCTION IF EXISTS {trigger}()")
    op.execute("DROP TABLE IF EXISTS search_words")
    op.execute("DROP TABLE IF EXISTS search_postings")
    op.execute("DROP FUNCTION IF EXISTS search_words_of(text)")
