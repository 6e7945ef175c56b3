"""kjob's stand-in for Kaggle's `kaggle_secrets`, for runs kjob makes on this machine or a Ray
cluster (smoke, local, Ray, the emulator's sessions). Not a kjob module: the run sandbox puts
this folder on the kernel's import path, as Kaggle's image has its own module.

It speaks Kaggle's protocol: a POST of {"Label": name} to
$KAGGLE_URL_BASE/requests/GetUserSecretByLabelRequest with the run's token
($KAGGLE_USER_SECRETS_TOKEN) as a bearer header, answered {"wasSuccessful": true, "result":
{"secret": ...}} or {"wasSuccessful": false, "errors": [...]}. kjob's runner serves that
endpoint on 127.0.0.1 for the run's lifetime and answers only the recipe's `secrets`. Errors
are Kaggle's classes with Kaggle's messages: CredentialError (no token, or one refused),
BackendError (a name not attached, i.e. not listed or not set), ValidationError (an empty
name), ConnectionError (the service cannot be reached).

Only the standard library: it runs in the kernel's Python, whatever is installed there.
"""

import json
import os
import socket
import urllib.request
from urllib.error import HTTPError, URLError

_URL_BASE_VARIABLE = "KAGGLE_URL_BASE"
_TOKEN_VARIABLE = "KAGGLE_USER_SECRETS_TOKEN"
_DEFAULT_URL_BASE = "https://www.kaggle.com"
TIMEOUT_SECS = 40


class CredentialError(Exception):
    pass


class BackendError(Exception):
    pass


class ValidationError(Exception):
    pass


class UserSecretsClient:
    GET_USER_SECRET_ENDPOINT = "/requests/GetUserSecretRequest"
    GET_USER_SECRET_BY_LABEL_ENDPOINT = "/requests/GetUserSecretByLabelRequest"

    def __init__(self):
        self.url_base = os.getenv(_URL_BASE_VARIABLE) or _DEFAULT_URL_BASE
        self.jwt_token = os.getenv(_TOKEN_VARIABLE)
        if self.jwt_token is None:
            raise CredentialError("A JWT Token is required to use the UserSecretsClient, "
                                  f"but none found in environment variable {_TOKEN_VARIABLE}")
        self.headers = {"Content-type": "application/json", "X-Kaggle-Authorization": f"Bearer {self.jwt_token}"}

    def get_secret(self, label) -> str:
        """The value of the secret named `label`, if it is attached to this kernel."""
        if label is None or len(label) == 0:
            raise ValidationError("Label must be non-empty.")
        result = self._post({"Label": label}, self.GET_USER_SECRET_BY_LABEL_ENDPOINT)
        if "secret" not in result:
            raise BackendError(f"Unexpected response from the service. Response: {result}")
        return result["secret"]

    def get_bigquery_access_token(self):
        raise BackendError("Unexpected response from the service. Response: "
                           "{'errors': ['Google Cloud access tokens exist only on Kaggle'], 'wasSuccessful': False}")

    def _post(self, body: dict, endpoint: str) -> dict:
        request = urllib.request.Request(f"{self.url_base}{endpoint}", headers=self.headers,
                                         data=json.dumps(body).encode("utf-8"))
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECS) as response:
                answer = json.loads(response.read())
        except HTTPError as exc:  # before URLError, of which it is a kind
            if exc.code in (401, 403):
                raise CredentialError(f"Service responded with error code {exc.code}. "
                                      "Please ensure you have access to the resource.") from exc
            raise BackendError("Unexpected response from the service.") from exc
        except (URLError, socket.timeout) as exc:
            if isinstance(exc, socket.timeout) or isinstance(getattr(exc, "reason", None), socket.timeout):
                raise ConnectionError("Timeout error trying to communicate with service. "
                                      "Please ensure internet is on.") from exc
            raise ConnectionError("Connection error trying to communicate with service.") from exc
        if not isinstance(answer, dict) or not answer.get("wasSuccessful") or "result" not in answer:
            raise BackendError(f"Unexpected response from the service. Response: {answer}.")
        return answer["result"]
