"""Explore: the embedding cache, cached projections and clusterings, and map points.

Embeddings are keyed by (embedding model, hash of the text), so the same text is never
embedded twice. A projection is keyed by the set of items (ids + text hashes), the model and
the layout parameters; a clustering by its projection and the clustering parameters, so
changing the minimum cluster size never recomputes UMAP. ``map_points`` joins them for SQL.
"""

VERSION = 3
NAME = "explore: embeddings cache, projections, clusterings"

STATEMENTS = [
    # FLOAT[] (not FLOAT[384]) because any sentence-transformers model may be configured.
    """CREATE TABLE embeddings (
        model VARCHAR NOT NULL,
        text_hash VARCHAR NOT NULL,
        dim INTEGER NOT NULL,
        vector FLOAT[] NOT NULL,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (model, text_hash)
    )""",
    """CREATE TABLE projections (
        projection_id VARCHAR PRIMARY KEY,
        items_hash VARCHAR NOT NULL,
        model VARCHAR NOT NULL,
        method VARCHAR NOT NULL,
        params JSON NOT NULL,
        n_points INTEGER NOT NULL,
        seconds DOUBLE,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    )""",
    """CREATE TABLE projection_points (
        projection_id VARCHAR NOT NULL,
        item_id VARCHAR NOT NULL,
        x DOUBLE NOT NULL,
        y DOUBLE NOT NULL,
        PRIMARY KEY (projection_id, item_id)
    )""",
    """CREATE TABLE clusterings (
        clustering_id VARCHAR PRIMARY KEY,
        projection_id VARCHAR NOT NULL,
        params JSON NOT NULL,
        n_clusters INTEGER NOT NULL,
        noise_share DOUBLE NOT NULL,
        seconds DOUBLE,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    )""",
    """CREATE TABLE cluster_assignments (
        clustering_id VARCHAR NOT NULL,
        item_id VARCHAR NOT NULL,
        cluster INTEGER NOT NULL,
        PRIMARY KEY (clustering_id, item_id)
    )""",
    # One row per point of a clustered map: SELECT cluster, count(*) FROM map_points ... GROUP BY 1.
    """CREATE VIEW map_points AS
        SELECT c.projection_id, c.clustering_id, p.item_id, p.x, p.y, a.cluster
        FROM clusterings c
        JOIN projection_points p ON p.projection_id = c.projection_id
        JOIN cluster_assignments a ON a.clustering_id = c.clustering_id AND a.item_id = p.item_id""",
]
