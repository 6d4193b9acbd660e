"""rauc-hawkbit (PyPI) as a device: its DDI client class, driven the way its daemon drives it.

`rauc_hawkbit.ddi.client.DDIClient` is the third-party code under test: it builds the URLs,
sends the requests (aiohttp, `Authorization: TargetToken`), checks that every answer is 200,
parses the JSON, downloads artifacts and computes their MD5. The daemon around it
(`RaucDBUSDDIClient`) needs D-Bus and RAUC, so `RaucDevice` repeats the daemon's steps
instead: the same link order (configData, deploymentBase, cancelAction), the same href
regular expressions, the same MD5 comparison and the same feedback messages; "installing"
writes the bundle into a directory instead of calling RAUC over D-Bus.
"""

import asyncio
import importlib
import os
import re


def import_error():
    """None when rauc-hawkbit's DDI client and aiohttp import, else the ImportError."""
    try:
        importlib.import_module("aiohttp")
        importlib.import_module("rauc_hawkbit.ddi.client")
    except ImportError as error:
        return error
    return None


class RaucDevice:
    """One rauc-hawkbit DDI client with its own aiohttp session and event loop."""

    def __init__(self, host, controller_id, token, install_dir, tenant="DEFAULT",
                 ssl_context=None, local_address=None):
        """`ssl_context`: https:// with this context (its CA, and a client certificate for
        mTLS), as the daemon's `ssl = true`; `local_address`: the source IP to connect from."""
        import aiohttp
        from rauc_hawkbit.ddi.client import DDIClient

        self.loop = asyncio.new_event_loop()
        self.install_dir = install_dir
        install_dir.mkdir(parents=True, exist_ok=True)
        self.bundle = str(install_dir / "bundle.raucb")

        async def open_session():
            connector = aiohttp.TCPConnector(
                ssl=ssl_context if ssl_context is not None else True,
                local_addr=(local_address, 0) if local_address else None)
            return aiohttp.ClientSession(connector=connector)
        self.session = self.loop.run_until_complete(open_session())
        # host is "127.0.0.1:PORT"; the third argument is its config's `ssl` (https or http).
        self.ddi = DDIClient(self.session, host, ssl_context is not None, token, tenant,
                             controller_id)

    def run(self, coroutine, timeout=30):
        return self.loop.run_until_complete(asyncio.wait_for(coroutine, timeout))

    def close(self):
        try:
            self.loop.run_until_complete(self.session.close())
        finally:
            self.loop.close()

    # --- the daemon's steps ----------------------------------------------------------------

    def poll(self):
        """GET the base resource: the JSON document (APIError on anything but 200)."""
        return self.run(self.ddi())

    def identify(self, attributes):
        from rauc_hawkbit.ddi.client import ConfigStatusExecution, ConfigStatusResult
        self.run(self.ddi.configData(ConfigStatusExecution.closed, ConfigStatusResult.success,
                                     **attributes))

    def deployment(self, base):
        """(action id, deployment document) for the deploymentBase link, exactly as the
        daemon parses it: the href must match /deploymentBase/<id>?c=<value>."""
        href = base["_links"]["deploymentBase"]["href"]
        match = re.search(r"/deploymentBase/(.+)\?c=(.+)$", href)
        assert match, "rauc-hawkbit cannot parse the deploymentBase href %r" % href
        action_id, resource = match.groups()
        return action_id, self.run(self.ddi.deploymentBase[action_id](resource))

    def download(self, deployment, tries=3):
        """Download chunks[0].artifacts[0] through the softwaremodules resource, as the
        daemon does when the href has the hawkBit shape; True when the MD5 matches."""
        artifact = deployment["deployment"]["chunks"][0]["artifacts"][0]
        links = artifact["_links"]
        url = (links.get("download") or links["download-http"])["href"]
        match = re.search(r"/softwaremodules/(.+)/artifacts/(.+)$", url)
        assert match, "rauc-hawkbit cannot parse the download href %r" % url
        module, filename = match.groups()
        for _ in range(tries):
            checksum = self.run(
                self.ddi.softwaremodules[module].artifacts[filename](self.bundle))
            if checksum == artifact["hashes"]["md5"]:
                return True
        return False

    def feedback(self, action_id, execution, result, details, **progress):
        from rauc_hawkbit.ddi.deployment_base import (DeploymentStatusExecution,
                                                      DeploymentStatusResult)
        self.run(self.ddi.deploymentBase[action_id].feedback(
            DeploymentStatusExecution[execution], DeploymentStatusResult[result], details,
            **progress))

    def install(self, action_id, result=0):
        """What the daemon reports while RAUC installs the bundle, RAUC replaced by a copy
        into the install directory: progress, then the completion message."""
        self.feedback(action_id, "proceeding", "none", ["Installing"], percentage=0)
        if result == 0:
            os.replace(self.bundle, str(self.install_dir / "installed.raucb"))
            self.feedback(action_id, "proceeding", "none", ["Installing done."],
                          percentage=100)
        else:
            # RAUC's LastError property: the daemon sends it as proceeding/failure.
            self.feedback(action_id, "proceeding", "failure",
                          ["Installation error: bundle rejected"])
        message = "Rauc bundle update completed with result: {}".format(result)
        self.feedback(action_id, "closed", "success" if result == 0 else "failure", [message])

    def cancel(self, base, accept):
        """GET the cancelAction, read its stopId, and answer it: accepted (closed/success) or,
        as the rauc-hawkbit daemon always does, rejected ("Cancelling not supported")."""
        from rauc_hawkbit.ddi.cancel_action import CancelStatusExecution, CancelStatusResult
        href = base["_links"]["cancelAction"]["href"]
        match = re.search(r"/cancelAction/(.+)$", href)
        assert match, "rauc-hawkbit cannot parse the cancelAction href %r" % href
        action_id, = match.groups()
        stop_id = self.run(self.ddi.cancelAction[action_id]())["cancelAction"]["stopId"]
        if accept:
            self.run(self.ddi.cancelAction[stop_id].feedback(
                CancelStatusExecution.closed, CancelStatusResult.success,
                status_details=("Action canceled.",)))
        else:
            self.run(self.ddi.cancelAction[stop_id].feedback(
                CancelStatusExecution.rejected, CancelStatusResult.success,
                status_details=("Cancelling not supported",)))
        return action_id, stop_id
