// Submits the SAML HTTP-POST form at once; without JavaScript the visible Continue button does it.
document.querySelectorAll("form[data-autosubmit]").forEach(function (form) { form.submit(); });
