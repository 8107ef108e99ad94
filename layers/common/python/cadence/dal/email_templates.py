"""SESv2 email templates: made when a campaign is stored, removed when it is cancelled."""

from collections.abc import Iterable

from botocore.exceptions import ClientError

from cadence.dal import clients
from cadence.email_templates import EmailTemplate


def _content(template: EmailTemplate) -> dict[str, str]:
    return {"Subject": template.subject, "Text": template.text, "Html": template.html}


def put(template: EmailTemplate) -> None:
    """Create the template, or update it when it exists (its name is derived from its content, so an update
    changes nothing a batch being sent relies on).

    Raises:
        TransientError: throttling or an outage.
        PermanentError: SES refused the template.
    """
    ses = clients.client("sesv2")
    try:
        ses.create_email_template(TemplateName=template.name, TemplateContent=_content(template))
    except ClientError as exc:
        if clients.error_code(exc) != "AlreadyExistsException":
            raise clients.translate(exc, "sesv2.create_email_template") from exc
        try:
            ses.update_email_template(TemplateName=template.name, TemplateContent=_content(template))
        except ClientError as update_exc:
            raise clients.translate(update_exc, "sesv2.update_email_template") from update_exc


def delete(names: Iterable[str]) -> None:
    """Delete these templates; one already gone is fine.

    Raises:
        TransientError: throttling or an outage.
        PermanentError: SES refused the call.
    """
    ses = clients.client("sesv2")
    for name in names:
        try:
            ses.delete_email_template(TemplateName=name)
        except ClientError as exc:
            if clients.error_code(exc) != "NotFoundException":
                raise clients.translate(exc, "sesv2.delete_email_template") from exc
