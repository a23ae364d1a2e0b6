/*
 * /docs: Swagger UI (vendored, web/docs/swagger-ui/) rendering the API
 * description served beside it.  No external validator badge (it would
 * send the document to validator.swagger.io), and "Try it out" stays on
 * this origin: the document's only server is relative.
 */
window.addEventListener('DOMContentLoaded', () => {
	window.ui = SwaggerUIBundle({
		url: '/openapi.yaml',
		dom_id: '#swagger-ui',
		deepLinking: true,
		validatorUrl: null,
		presets: [SwaggerUIBundle.presets.apis],
		layout: 'BaseLayout',
		// The OAuth2 password flow posts to /auth/login as a form: no
		// client id or secret exists, so do not ask for them.
		persistAuthorization: false,
	});
});
