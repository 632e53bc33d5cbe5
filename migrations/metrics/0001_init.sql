-- MetricsDO schema v1: aggregated operational signals (the admin API reads these).

CREATE TABLE counters (
  name           TEXT    NOT NULL,
  labels         TEXT    NOT NULL,           -- canonical JSON of the label set
  value          REAL    NOT NULL,
  PRIMARY KEY (name, labels)
) WITHOUT ROWID;

-- Last value per source (e.g. per conversation); readers take the max of fresh ones.
CREATE TABLE gauges (
  name           TEXT    NOT NULL,
  source         TEXT    NOT NULL,
  value          REAL    NOT NULL,
  updated_at     INTEGER NOT NULL,
  PRIMARY KEY (name, source)
) WITHOUT ROWID;
CREATE INDEX gauges_updated ON gauges (updated_at);

-- Cumulative histogram buckets (le = upper bound; +Inf stored as 1e308).
CREATE TABLE histograms (
  name           TEXT    NOT NULL,
  le             REAL    NOT NULL,
  count          INTEGER NOT NULL,
  PRIMARY KEY (name, le)
) WITHOUT ROWID;
CREATE TABLE histogram_sums (
  name           TEXT    PRIMARY KEY,
  sum            REAL    NOT NULL,
  count          INTEGER NOT NULL
) WITHOUT ROWID;
