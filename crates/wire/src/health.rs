//! `/healthz` and `/readyz`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `/healthz` and `/readyz` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthBody {
    #[schema(example = "ok")]
    pub status: String,
}
