# hgweb as a CGI program for one repository (like Mercurial's contrib hgweb.cgi), run by the
# worker once per wire-protocol request with the repository path in SWITCHYARD_HG_REPO.
# Push is disabled here as well as refused by the worker before this script ever starts.
import os

from mercurial import demandimport

demandimport.enable()

from mercurial import ui as uimod  # noqa: E402
from mercurial.hgweb import hgweb_mod, wsgicgi  # noqa: E402

baseui = uimod.ui.load()
for section, name, value in [
    (b'web', b'allow-push', b''),
    (b'web', b'allow_push', b''),
    (b'web', b'allow-archive', b''),
    (b'web', b'push_ssl', b'false'),
]:
    baseui.setconfig(section, name, value, b'switchyard')

wsgicgi.launch(hgweb_mod.hgweb(os.environb[b'SWITCHYARD_HG_REPO'], baseui=baseui))
