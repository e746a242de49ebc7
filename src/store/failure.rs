//! What kind of failure a store error is, so clients hear something they can act on: wait for
//! the database to come back, free space, or report a bug. Pure: looks at error codes only.

use super::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The database cannot be reached (down, restarting, renamed, connections cut); passes on
    /// its own when it is back (sqlx's pool reconnects).
    Unavailable,
    /// The disk (or the database's size limit) is full; passes when space is freed.
    Full,
    /// Anything else: a query failed, stored data is corrupt.
    Other,
}

impl StoreError {
    pub fn failure(&self) -> Failure {
        match self {
            StoreError::Database(error) => sqlx_failure(error),
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(error)) => sqlx_failure(error),
            _ => Failure::Other,
        }
    }
}

/// SQLSTATE `53100` (disk_full) on PostgreSQL, `SQLITE_FULL` (13) on SQLite; an I/O error
/// ENOSPC or EFBIG from either.
const FULL_CODES: &[&str] = &["53100", "13"];

fn sqlx_failure(error: &sqlx::Error) -> Failure {
    match error {
        sqlx::Error::Io(io) if is_full_io(io) => Failure::Full,
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Failure::Unavailable,
        sqlx::Error::Database(db) => match db.code() {
            Some(code) if FULL_CODES.contains(&code.as_ref()) => Failure::Full,
            // SQLSTATE class 08 (connection exception), 57P0x (server shutting down or
            // terminating sessions), 3D000 (the database is gone); SQLite's "unable to open" (14).
            Some(code) if code.starts_with("08") || code.starts_with("57P0") || code == "3D000" || code == "14" => {
                Failure::Unavailable
            }
            // SQLite reports a full disk met while growing its WAL index as an I/O error.
            _ if db.message().contains("disk is full") => Failure::Full,
            _ => Failure::Other,
        },
        _ => Failure::Other,
    }
}

fn is_full_io(error: &std::io::Error) -> bool {
    const ENOSPC: i32 = 28;
    const EFBIG: i32 = 27;
    error.kind() == std::io::ErrorKind::StorageFull || matches!(error.raw_os_error(), Some(ENOSPC | EFBIG))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_unavailable_unless_the_disk_is_full() {
        let io = |e: std::io::Error| StoreError::Database(sqlx::Error::Io(e));
        assert_eq!(io(std::io::Error::from_raw_os_error(28)).failure(), Failure::Full);
        assert_eq!(io(std::io::ErrorKind::ConnectionRefused.into()).failure(), Failure::Unavailable);
        assert_eq!(StoreError::Database(sqlx::Error::PoolTimedOut).failure(), Failure::Unavailable);
        assert_eq!(StoreError::Corrupt("x".into()).failure(), Failure::Other);
        assert_eq!(StoreError::Database(sqlx::Error::RowNotFound).failure(), Failure::Other);
    }
}
