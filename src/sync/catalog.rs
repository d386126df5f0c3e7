//! The attribute types of each mapped object, as Attio describes them.

use crate::attio::{AttioBudget, AttioClient, AttioError, AttributeInfo};
use crate::mapping::MappedObject;
use crate::secrets::Secret;

/// The attributes of each mapped object, as Attio describes them: read once per container,
/// when the first event needs them.
#[derive(Debug, Default)]
pub(super) struct AttributeCatalog {
    objects: std::sync::Mutex<Vec<(MappedObject, std::sync::Arc<Vec<AttributeInfo>>)>>,
}

impl AttributeCatalog {
    /// `object`'s attributes; `Ok(Err(reason))` when Attio will not say (a missing scope, say),
    /// `Err` when it could not be asked (it is down or rate-limiting: the event is retried).
    pub(super) async fn get(
        &self,
        token: &Secret,
        attio: &AttioClient,
        object: MappedObject,
        budget: &mut AttioBudget,
    ) -> Result<Result<std::sync::Arc<Vec<AttributeInfo>>, String>, AttioError> {
        let known = |objects: &[(MappedObject, std::sync::Arc<Vec<AttributeInfo>>)]| {
            objects
                .iter()
                .find(|(o, _)| *o == object)
                .map(|(_, a)| a.clone())
        };
        if let Some(attributes) = known(&self.objects.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(Ok(attributes));
        }
        match attio.list_attributes(token, object.slug(), budget).await {
            Ok(list) => {
                let list = std::sync::Arc::new(list);
                self.objects
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((object, list.clone()));
                Ok(Ok(list))
            }
            Err(
                e @ (AttioError::Forbidden { .. }
                | AttioError::ObjectNotActivated { .. }
                | AttioError::Invalid { .. }
                | AttioError::RecordNotFound),
            ) => Ok(Err(format!(
                "the attribute types of {} could not be read ({})",
                object.slug(),
                e.code()
            ))),
            Err(e) => Err(e),
        }
    }
}
