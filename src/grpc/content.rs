//! ContentService: registered pieces, embedded once at registration.

use tonic::{Request, Response, Status};

use crate::auth::Role;

use super::convert;
use super::error::Violations;
use super::pb::{self, content_service_server::ContentService};
use super::{Handlers, require};

/// The ContentService implementation.
pub struct ContentApi(pub Handlers);

#[tonic::async_trait]
impl ContentService for ContentApi {
    #[tracing::instrument(skip_all)]
    async fn register_content(
        &self,
        request: Request<pb::RegisterContentRequest>,
    ) -> Result<Response<pb::Content>, Status> {
        let _permit = self.0.engine.admit()?;
        let grant = crate::auth::grant_of(&request);
        let pb::RegisterContentRequest { tenant, content } = request.into_inner();
        let mut v = Violations::default();
        let tenant = convert::tenant(&mut v, tenant);
        crate::auth::permit(
            &grant,
            tenant.as_ref(),
            "ContentService/RegisterContent",
            Role::Read,
        )?;
        let content = convert::content(&mut v, content, &self.0.limits);
        require!(v; tenant, content);
        let stored = self.0.engine.register_content(&tenant, content).await?;
        Ok(Response::new(convert::content_to_pb(stored)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_content(
        &self,
        request: Request<pb::GetContentRequest>,
    ) -> Result<Response<pb::Content>, Status> {
        let _permit = self.0.engine.admit()?;
        let grant = crate::auth::grant_of(&request);
        let pb::GetContentRequest { tenant, id } = request.into_inner();
        let mut v = Violations::default();
        let tenant = convert::tenant(&mut v, tenant);
        crate::auth::permit(
            &grant,
            tenant.as_ref(),
            "ContentService/GetContent",
            Role::Read,
        )?;
        let id = convert::content_id(&mut v, "id", id);
        require!(v; tenant, id);
        let stored = self.0.engine.get_content(&tenant, &id).await?;
        Ok(Response::new(convert::content_to_pb(stored)))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_content(
        &self,
        request: Request<pb::DeleteContentRequest>,
    ) -> Result<Response<pb::DeleteContentResponse>, Status> {
        let _permit = self.0.engine.admit()?;
        let grant = crate::auth::grant_of(&request);
        let pb::DeleteContentRequest { tenant, id } = request.into_inner();
        let mut v = Violations::default();
        let tenant = convert::tenant(&mut v, tenant);
        crate::auth::permit(
            &grant,
            tenant.as_ref(),
            "ContentService/DeleteContent",
            Role::Read,
        )?;
        let id = convert::content_id(&mut v, "id", id);
        require!(v; tenant, id);
        let deleted = self.0.engine.delete_content(&tenant, &id).await?;
        Ok(Response::new(pb::DeleteContentResponse { deleted }))
    }
}
